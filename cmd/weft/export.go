package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/weftnet/weft/client"
)

// newExportCmd is `weft export`: stream messages by time as NDJSON or CSV.
func newExportCmd() *cobra.Command {
	var (
		node, format, out string
		rf                rangeFlags
		timeout           time.Duration
	)
	cmd := &cobra.Command{
		Use:   "export [--device KEY] [--from TIME] [--to TIME] [--confirmed] [--format ndjson|csv] [--out FILE]",
		Short: "Export messages whose timestamp is in a range, as NDJSON or CSV",
		Long: `Export streams from --node the messages whose timestamp (the one their device
set) is in [--from, --to), one device's with --device or every device's, only
the confirmed ones with --confirmed, oldest first, one record per message: id,
issuer, seq, timestamp (RFC 3339 and Unix nanoseconds), position, confirmed,
confirmed_at, and the payload as JSON where it is JSON, else base64
(payload_encoding says which). --format csv writes a header row and RFC 4180
quoting. It writes to --out, or to standard output, as the node sends it.

An export the node could not finish is an error (exit status 1): the output
then ends early.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := rf.timeRange()
			if err != nil {
				return err
			}
			if format != client.FormatNDJSON && format != client.FormatCSV {
				return usagef("--format %q: ndjson or csv", format)
			}
			c, err := nodeClient(node)
			if err != nil {
				return err
			}
			var dst io.Writer = cmd.OutOrStdout()
			if out != "" {
				f, err := os.Create(out)
				if err != nil {
					return fmt.Errorf("export: %w", err)
				}
				defer f.Close()
				dst = f
			}
			bw := bufio.NewWriterSize(dst, 256<<10)
			ctx, cancel := withTimeout(cmd.Context(), timeout)
			defer cancel()
			if _, err := c.Export(ctx, r, format, bw); err != nil {
				bw.Flush()
				return explain(err, "exporting", "node refused", timeout)
			}
			if err := bw.Flush(); err != nil {
				return fmt.Errorf("export: %w", err)
			}
			if f, ok := dst.(*os.File); ok && out != "" {
				if err := f.Close(); err != nil {
					return fmt.Errorf("export: %w", err)
				}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&node, "node", defaultNode, "the node's API `URL`")
	rf.add(f)
	f.StringVar(&format, "format", client.FormatNDJSON, "ndjson or csv")
	f.StringVar(&out, "out", "", "write to this `FILE` instead of standard output")
	f.DurationVar(&timeout, "timeout", 0, "give up after this long (0: never)")
	return cmd
}
