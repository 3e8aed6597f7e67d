// Command weft runs a Weft node and speaks to one: `weft node` starts a node
// on embedded defaults; `weft keygen`, `weft send`, `weft get` (and `weft
// get messages`), `weft export` and `weft follow` are for devices and
// operators, `weft devices` manages a node's device registry. Configuration (flags, WEFT_* environment variables,
// a YAML file) is read here and nowhere else.
//
// weft exits with status 0 on success, 2 on a usage error (see usageError)
// and 1 on any other failure (docs/OPERATING.md).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

// Exit statuses of weft.
const (
	exitFailure = 1 // the command was understood but failed
	exitUsage   = 2 // the command line or the configuration is wrong
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := execute(ctx, newRootCmd(), os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "weft:", err)
		os.Exit(exitCode(err))
	}
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "weft",
		Short:         "Weft: a DAG ledger for IoT telemetry",
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newNodeCmd(), newKeygenCmd(), newSendCmd(), newGetCmd(), newDevnetCmd(), newDevicesCmd(), newRulesCmd(), newExportCmd(), newFollowCmd(), newProofCmd(), newVerifyCmd())
	root.AddCommand(newBenchCmd())
	return root
}

// usageError is a mistake of the caller's: an unknown command or flag, a
// bad flag value, a missing argument, an unknown setting or a bad value in
// the configuration. weft exits with status 2 on one.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// usagef returns a usageError with a formatted message; %w wraps as in
// fmt.Errorf.
func usagef(format string, a ...any) error {
	return &usageError{fmt.Errorf(format, a...)}
}

// execute runs root with args. Every error cobra returns before a
// command's own run starts (unknown commands and flags, bad flag values,
// wrong arguments, required or exclusive flags) comes back as a
// usageError; the commands mark their own usage errors.
//
// It marks the start in root's PersistentPreRunE, which cobra runs for
// every subcommand that has none of its own (subcommands must not set
// one), after parsing flags and checking arguments; cobra checks required
// and exclusive flags only after it, so it checks them first.
func execute(ctx context.Context, root *cobra.Command, args []string) error {
	started := false
	root.PersistentPreRunE = func(c *cobra.Command, _ []string) error {
		if err := c.ValidateRequiredFlags(); err != nil {
			return &usageError{err}
		}
		if err := c.ValidateFlagGroups(); err != nil {
			return &usageError{err}
		}
		started = true
		return nil
	}
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err != nil && !started {
		var ue *usageError
		if !errors.As(err, &ue) {
			err = &usageError{err}
		}
	}
	return err
}

// exitCode is weft's exit status for the error a command returned.
func exitCode(err error) int {
	var ue *usageError
	if errors.As(err, &ue) {
		return exitUsage
	}
	return exitFailure
}
