package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/weftnet/weft/api/wire"
	"github.com/weftnet/weft/client"
	"github.com/weftnet/weft/dag"
)

// tokenEnv is the variable weft devices reads the operator's token from
// when --token is not given.
const tokenEnv = "WEFT_API_TOKEN"

// devicesFlags are the flags every `weft devices` command takes.
type devicesFlags struct {
	node, token string
	timeout     time.Duration
}

// client returns a client for the node with the operator's token, and a
// context bounded by --timeout.
func (f *devicesFlags) client(ctx context.Context) (*client.Client, context.Context, context.CancelFunc, error) {
	token := f.token
	if token == "" {
		token = os.Getenv(tokenEnv)
	}
	c, err := nodeClient(f.node, client.WithToken(token))
	if err != nil {
		return nil, nil, nil, err
	}
	cancel := func() {}
	if f.timeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, f.timeout)
	}
	return c, ctx, cancel, nil
}

// newDevicesCmd is `weft devices`: the node's device registry.
func newDevicesCmd() *cobra.Command {
	f := &devicesFlags{}
	cmd := &cobra.Command{
		Use:   "devices",
		Short: "Manage a node's device registry: add, tag, untag, revoke, allow, rm, list, show, changes",
		Long: `The devices commands read and change the registry of the node at --node
(docs/OPERATING.md, "Devices"). The changes need an operator's API token: --token, or
the environment variable ` + tokenEnv + `. A revoked device's next submission to the node is
refused (403 revoked); allow takes it back.`,
		Args: cobra.NoArgs,
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.node, "node", defaultNode, "the node's API `URL`")
	pf.StringVar(&f.token, "token", "", "the operator's API token (default $"+tokenEnv+")")
	pf.DurationVar(&f.timeout, "timeout", 30*time.Second, "give up after this long (0: never)")
	cmd.AddCommand(newDevicesAddCmd(f), newDevicesListCmd(f), newDevicesShowCmd(f), newDevicesChangesCmd(f),
		newDevicesRemoveCmd(f))
	for _, e := range []struct{ use, short string }{
		{"tag", "Add tags to a device"}, {"untag", "Remove tags from a device"},
	} {
		cmd.AddCommand(newDevicesTagCmd(f, e.use, e.short))
	}
	for _, e := range []struct{ use, state, short string }{
		{"revoke", "revoked", "Revoke a device: the node refuses its submissions"},
		{"allow", "allowed", "Allow a revoked device again"},
	} {
		cmd.AddCommand(newDevicesStateCmd(f, e.use, e.state, e.short))
	}
	return cmd
}

// parseDeviceKey reads a device key argument.
func parseDeviceKey(s string) (dag.PublicKey, error) {
	k, err := parseKey(s)
	if err != nil {
		return k, usagef("%q is not a device key (64 hex characters)", s)
	}
	return k, nil
}

// onDevice parses the device key arg and runs do with a client and a
// context bounded by --timeout.
func (f *devicesFlags) onDevice(cmd *cobra.Command, arg string, do func(context.Context, *client.Client, dag.PublicKey) error) error {
	k, err := parseDeviceKey(arg)
	if err != nil {
		return err
	}
	c, ctx, cancel, err := f.client(cmd.Context())
	if err != nil {
		return err
	}
	defer cancel()
	return do(ctx, c, k)
}

// changeDevice runs change on the device arg and prints the device it
// returns.
func (f *devicesFlags) changeDevice(cmd *cobra.Command, arg, doing string, change func(context.Context, *client.Client, dag.PublicKey) (client.RegisteredDevice, error)) error {
	return f.onDevice(cmd, arg, func(ctx context.Context, c *client.Client, k dag.PublicKey) error {
		d, err := change(ctx, c, k)
		if err != nil {
			return explain(err, doing+" device "+k.String(), "node refused", f.timeout)
		}
		return printDevices(cmd.OutOrStdout(), []client.RegisteredDevice{d})
	})
}

func newDevicesAddCmd(f *devicesFlags) *cobra.Command {
	var (
		d       client.NewDevice
		revoked bool
	)
	cmd := &cobra.Command{
		Use:   "add KEY [--name NAME] [--tag TAG]... [--owner OWNER] [--revoked]",
		Short: "Register a device",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if revoked {
				d.State = "revoked"
			}
			return f.changeDevice(cmd, args[0], "adding", func(ctx context.Context, c *client.Client, k dag.PublicKey) (client.RegisteredDevice, error) {
				d.Key = k.String()
				return c.AddDevice(ctx, d)
			})
		},
	}
	cmd.Flags().StringVar(&d.Name, "name", "", "the device's name")
	cmd.Flags().StringSliceVar(&d.Tags, "tag", nil, "a tag, repeatable or comma-separated")
	cmd.Flags().StringVar(&d.Owner, "owner", "", "the device's owner")
	cmd.Flags().BoolVar(&revoked, "revoked", false, "register it revoked")
	return cmd
}

// newDevicesTagCmd is tag or untag, by use.
func newDevicesTagCmd(f *devicesFlags, use, short string) *cobra.Command {
	return &cobra.Command{
		Use:   use + " KEY TAG...",
		Short: short,
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var e client.DeviceEdit
			if use == "tag" {
				e.AddTags = args[1:]
			} else {
				e.RemoveTags = args[1:]
			}
			return f.changeDevice(cmd, args[0], use+"ging", func(ctx context.Context, c *client.Client, k dag.PublicKey) (client.RegisteredDevice, error) {
				return c.EditDevice(ctx, k, e)
			})
		},
	}
}

// newDevicesStateCmd is revoke or allow, by use.
func newDevicesStateCmd(f *devicesFlags, use, state, short string) *cobra.Command {
	return &cobra.Command{
		Use:   use + " KEY",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return f.changeDevice(cmd, args[0], "setting "+state+":", func(ctx context.Context, c *client.Client, k dag.PublicKey) (client.RegisteredDevice, error) {
				return c.EditDevice(ctx, k, client.DeviceEdit{State: state})
			})
		},
	}
}

func newDevicesShowCmd(f *devicesFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "show KEY",
		Short: "Print a registered device as JSON, as the API shows it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return f.onDevice(cmd, args[0], func(ctx context.Context, c *client.Client, k dag.PublicKey) error {
				d, err := c.GetDevice(ctx, k)
				if err != nil {
					return explain(err, "getting device "+k.String(), "node refused", f.timeout)
				}
				b, err := json.MarshalIndent(wire.Device{Key: d.Key.String(), Name: d.Name, Tags: d.Tags, Owner: d.Owner,
					State: d.State, Created: d.Created.UnixNano(), Updated: d.Updated.UnixNano()}, "", "  ")
				if err != nil {
					return err
				}
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s\n", b)
				return err
			})
		},
	}
}

func newDevicesRemoveCmd(f *devicesFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "rm KEY",
		Short: "Remove a device from the registry",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return f.onDevice(cmd, args[0], func(ctx context.Context, c *client.Client, k dag.PublicKey) error {
				if err := c.RemoveDevice(ctx, k); err != nil {
					return explain(err, "removing device "+k.String(), "node refused", f.timeout)
				}
				return nil
			})
		},
	}
}

func newDevicesListCmd(f *devicesFlags) *cobra.Command {
	var (
		tag   string
		limit int
	)
	cmd := &cobra.Command{
		Use:   "list [--tag TAG] [--limit N]",
		Short: "List the registered devices: key, state, name, tags, owner",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 0 {
				return usagef("--limit %d: want 0 (all) or more", limit)
			}
			c, ctx, cancel, err := f.client(cmd.Context())
			if err != nil {
				return err
			}
			defer cancel()
			var (
				all   []client.RegisteredDevice
				after *dag.PublicKey
			)
			for {
				page := 1000
				if limit > 0 {
					page = min(page, limit-len(all))
				}
				devs, next, err := c.Devices(ctx, tag, after, page)
				if err != nil {
					return explain(err, "listing devices", "node refused", f.timeout)
				}
				all = append(all, devs...)
				if after = next; next == nil || (limit > 0 && len(all) >= limit) {
					break
				}
			}
			return printDevices(cmd.OutOrStdout(), all)
		},
	}
	cmd.Flags().StringVar(&tag, "tag", "", "only the devices with this tag")
	cmd.Flags().IntVar(&limit, "limit", 0, "at most this many (0: all)")
	return cmd
}

// printDevices writes one line a device: key, state, name, tags, owner.
func printDevices(w io.Writer, devs []client.RegisteredDevice) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, d := range devs {
		fmt.Fprintf(tw, "%s\t%s\t%q\t%s\t%q\n", d.Key, d.State, d.Name, strings.Join(d.Tags, ","), d.Owner)
	}
	return tw.Flush()
}

func newDevicesChangesCmd(f *devicesFlags) *cobra.Command {
	var limit int
	cmd := &cobra.Command{
		Use:   "changes [--limit N]",
		Short: "Print the registry's change log, newest first: seq, time, who, operation, key, detail",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 1 || limit > 1000 {
				return usagef("--limit %d: want 1..1000", limit)
			}
			c, ctx, cancel, err := f.client(cmd.Context())
			if err != nil {
				return err
			}
			defer cancel()
			cs, _, err := c.DeviceChanges(ctx, 0, limit)
			if err != nil {
				return explain(err, "reading the change log", "node refused", f.timeout)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			for _, ch := range cs {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", ch.Seq, ch.At.UTC().Format(time.RFC3339Nano), ch.Who, ch.Op, ch.Key, ch.Detail)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 100, "the latest this many changes (1..1000)")
	return cmd
}
