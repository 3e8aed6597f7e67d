// Command weft runs a Weft node and speaks to one: `weft node` starts a node
// on embedded defaults; `weft keygen`, `weft send` and `weft get` are for
// devices and operators. Configuration (flags, WEFT_* environment variables,
// a YAML file) is read here and nowhere else.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRootCmd().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "weft:", err)
		os.Exit(1)
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
	root.AddCommand(newNodeCmd(), newKeygenCmd(), newSendCmd(), newGetCmd(), newDevnetCmd())
	root.AddCommand(newBenchCmd())
	return root
}
