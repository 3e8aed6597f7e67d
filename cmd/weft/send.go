package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"

	"github.com/weftnet/weft/client"
	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/pow"
)

// defaultNode is the --node of the client verbs: a node's default API address.
const defaultNode = "http://127.0.0.1:8080"

// newSendCmd is `weft send`: build, sign, solve and submit one message, as a
// device does.
func newSendCmd() *cobra.Command {
	var (
		node, keyPath, data, file string
		wait, remotePoW           bool
		timeout                   time.Duration
		retries                   int
		o                         outOptions
	)
	cmd := &cobra.Command{
		Use:   "send --key FILE [--data TEXT | --file PATH] [--wait | --out FILE]",
		Short: "Sign, solve and submit a message; print its id",
		Long: `Send builds a message carrying the payload (--data, --file, or standard input
when neither is given), signs it with the key in --key (a file written by
weft keygen), does its proof of work (or has the node do it, --remote-pow),
submits it to --node and prints its id once the node has stored it. With
--wait it then waits until the message is confirmed and prints when.
A node that answers 429 or 503, or a connection that fails, is tried
again with backoff, up to --retries attempts a request. --timeout bounds
all of it.

With --out FILE it writes the message's bytes to FILE and prints its id,
without submitting it: POST the file to /api/v1/messages. With --parents
and --difficulty (from a node's /api/v1/tips) it asks no node at all.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if retries < 1 {
				return usagef("send: --retries %d: at least 1 (1: no retry)", retries)
			}
			c, err := nodeClient(node, client.WithRetry(client.Retry{Attempts: retries}))
			if err != nil {
				return err
			}
			if keyPath == "" {
				return usagef("send: --key FILE is required")
			}
			if err := o.check(cmd); err != nil {
				return err
			}
			key, err := client.ReadKeyFile(keyPath)
			if err != nil {
				return fmt.Errorf("send: %w", err)
			}
			payload, err := readPayload(cmd, data, file)
			if err != nil {
				return err
			}
			ctx, cancel := withTimeout(cmd.Context(), timeout)
			defer cancel()
			var m *dag.Message
			if o.offline() {
				if m, err = o.build(ctx, key, payload); err != nil {
					return err
				}
			} else {
				dev := &client.Device{Key: key, Client: c, RemotePoW: remotePoW}
				if m, err = dev.Build(ctx, payload); err != nil {
					return explain(err, "building the message", "node refused to hand out tips", timeout)
				}
			}
			if o.out != "" {
				return o.write(cmd.OutOrStdout(), m)
			}
			var id dag.ID
			if remotePoW {
				var nonce uint64
				if id, nonce, err = c.SubmitRemotePoW(ctx, m.Bytes()); errors.Is(err, client.ErrPending) {
					m.SetNonce(nonce)
				}
			} else {
				id, err = c.Submit(ctx, m.Bytes())
			}
			if errors.Is(err, client.ErrPending) {
				id, err = untilStored(ctx, c, m.Bytes())
			}
			if err != nil {
				return explain(err, "submitting the message", "node refused the message", timeout)
			}
			out := cmd.OutOrStdout()
			fmt.Fprintln(out, id)
			if !wait {
				return nil
			}
			info, err := c.WaitConfirmed(ctx, id)
			if err != nil {
				return explain(err, "waiting for confirmation", "node refused to show the message", timeout)
			}
			at := time.Unix(0, info.ConfirmedAt).UTC()
			_, err = fmt.Fprintf(out, "confirmed at %s (%s after its timestamp)\n",
				at.Format(time.RFC3339Nano), time.Duration(info.ConfirmedAt-info.Timestamp))
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&node, "node", defaultNode, "the node's API `URL`")
	f.StringVar(&keyPath, "key", "", "the device's key `FILE` (required)")
	f.StringVar(&data, "data", "", "the payload, as `TEXT`")
	f.StringVar(&file, "file", "", "read the payload from `PATH`")
	f.BoolVar(&wait, "wait", false, "wait until the message is confirmed")
	f.BoolVar(&remotePoW, "remote-pow", false, "have the node do the proof of work (for keys its operator lists)")
	f.DurationVar(&timeout, "timeout", 30*time.Second, "give up after this long (0: never)")
	f.IntVar(&retries, "retries", client.DefaultRetryAttempts, "attempts of each request when the node is busy or unreachable (1: no retry)")
	cmd.MarkFlagsMutuallyExclusive("data", "file")
	o.addFlags(cmd)
	return cmd
}

// readPayload returns the payload of send: --data if given, else the
// contents of --file if given, else standard input.
func readPayload(cmd *cobra.Command, data, file string) ([]byte, error) {
	if cmd.Flags().Changed("data") {
		return []byte(data), nil
	}
	var (
		r    io.Reader = cmd.InOrStdin()
		from           = "standard input"
	)
	if file != "" {
		f, err := os.Open(file)
		if err != nil {
			return nil, fmt.Errorf("send: %w", err)
		}
		defer f.Close()
		r, from = f, file
	} else if f, ok := r.(*os.File); ok && isatty.IsTerminal(f.Fd()) {
		fmt.Fprintln(cmd.ErrOrStderr(), "weft send: reading the payload from standard input; end it with Ctrl-D")
	}
	b, err := io.ReadAll(io.LimitReader(r, dag.MaxPayload+1))
	if err != nil {
		return nil, fmt.Errorf("send: reading the payload from %s: %w", from, err)
	}
	if len(b) > dag.MaxPayload {
		return nil, fmt.Errorf("send: the payload from %s is over %d bytes, the most a message carries", from, dag.MaxPayload)
	}
	return b, nil
}

// nodeClient checks a --node URL and returns a client for it, made with
// opts.
func nodeClient(node string, opts ...client.Option) (*client.Client, error) {
	u, err := url.Parse(node)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, usagef("--node %q is not a node's URL, such as %s", node, defaultNode)
	}
	return client.New(node, opts...), nil
}

// cliError is an error with a message for the command line that still
// wraps the error it explains.
type cliError struct {
	msg string
	err error
}

func (e *cliError) Error() string { return e.msg }
func (e *cliError) Unwrap() error { return e.err }

// explain turns an error of the client into a message for people: a
// refusal with the node's code and message after refused, a timeout with
// the --timeout that ran out, anything else after doing.
func explain(err error, doing, refused string, timeout time.Duration) error {
	var (
		ae *client.APIError
		ue *url.Error
	)
	switch {
	case errors.As(err, &ae):
		code := ae.Code
		if code == "" {
			code = fmt.Sprintf("HTTP %d", ae.Status)
		}
		msg := fmt.Sprintf("%s: %s: %s", refused, code, ae.Message)
		if ae.RetryAfter > 0 {
			msg += fmt.Sprintf(" (retry after %s)", ae.RetryAfter)
		}
		return &cliError{msg, err}
	case errors.Is(err, context.DeadlineExceeded) && timeout > 0:
		return &cliError{fmt.Sprintf("%s: timed out after %s (see --timeout): %v", doing, timeout, err), err}
	case errors.As(err, &ue):
		host := ue.URL
		if u, perr := url.Parse(ue.URL); perr == nil {
			host = u.Host
		}
		return &cliError{fmt.Sprintf("%s: no answer from the node at %s: %v", doing, host, ue.Err), err}
	default:
		return &cliError{fmt.Sprintf("%s: %v", doing, err), err}
	}
}

// pendingRetry is how often send offers a pending message again.
const pendingRetry = 500 * time.Millisecond

// untilStored sends raw again, the same bytes, while the node holds it for
// its parents (202), until it is stored (or was: duplicate) or ctx ends.
func untilStored(ctx context.Context, c *client.Client, raw []byte) (dag.ID, error) {
	for {
		select {
		case <-ctx.Done():
			return dag.ID{}, fmt.Errorf("%w: the node still holds the message for its parents (202 pending); it is not stored", ctx.Err())
		case <-time.After(pendingRetry):
		}
		id, err := c.Submit(ctx, raw)
		switch {
		case errors.Is(err, client.ErrPending):
			continue
		case client.IsCode(err, client.CodeDuplicate):
			return dag.ID(pow.Hash(raw)), nil // stored meanwhile
		default:
			return id, err
		}
	}
}
