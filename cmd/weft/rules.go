package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/weftnet/weft/client"
	"github.com/weftnet/weft/rules"
)

// newRulesCmd is `weft rules`: the node's rules on confirmed telemetry.
func newRulesCmd() *cobra.Command {
	f := &devicesFlags{}
	cmd := &cobra.Command{
		Use:   "rules",
		Short: "Manage a node's rules on confirmed telemetry: add, list, show, rm, dead, test",
		Long: `The rules commands read and change the rules of the node at --node (docs/RULES.md):
a condition in CEL over each confirmed message and an action (a log line, an event on
the feed, or a signed webhook). Every one needs an operator's API token, reads included:
--token, or the environment variable ` + tokenEnv + `. Rules of the node's configuration
file are listed, and change only in the file.`,
		Args: cobra.NoArgs,
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.node, "node", defaultNode, "the node's API `URL`")
	pf.StringVar(&f.token, "token", "", "the operator's API token (default $"+tokenEnv+")")
	pf.DurationVar(&f.timeout, "timeout", 30*time.Second, "give up after this long (0: never)")
	cmd.AddCommand(newRulesAddCmd(f), newRulesListCmd(f), newRulesShowCmd(f), newRulesRemoveCmd(f),
		newRulesDeadCmd(f), newRulesTestCmd(f))
	return cmd
}

// withClient runs do with a client for the node and a context bounded by
// --timeout.
func (f *devicesFlags) withClient(cmd *cobra.Command, do func(context.Context, *client.Client) error) error {
	c, ctx, cancel, err := f.client(cmd.Context())
	if err != nil {
		return err
	}
	defer cancel()
	return do(ctx, c)
}

// ruleSpec are the flags that define a rule on the command line.
type ruleSpec struct {
	file, condition, webhook, secret, secretFile, mqttTopic string
	log, event                                              bool
}

// maxRuleFile bounds a rule's file (the API takes 16 KiB).
const maxRuleFile = 64 << 10

// rule returns the rule the flags and the name argument define: a file
// (YAML or JSON, one rule), or a condition and one action.
func (s *ruleSpec) rule(args []string) (client.Rule, error) {
	var r client.Rule
	if s.file != "" {
		if s.condition != "" || s.webhook != "" || s.log || s.event {
			return r, usagef("-f takes the whole rule from the file: give no --condition, --webhook, --log or --event")
		}
		b, err := readLimited(s.file, maxRuleFile)
		if err != nil {
			return r, err
		}
		var fr rules.Rule
		d := yaml.NewDecoder(bytes.NewReader(b)) // YAML is a superset of JSON
		d.KnownFields(true)
		if err := d.Decode(&fr); err != nil {
			return r, usagef("%s: %v", s.file, err)
		}
		r = client.Rule{Name: fr.Name, Condition: fr.Condition,
			Action: client.RuleAction{Kind: fr.Action.Kind, URL: fr.Action.URL, Secret: fr.Action.Secret, Topic: fr.Action.Topic}}
		if len(args) == 1 && args[0] != r.Name {
			return r, usagef("the argument names rule %q, the file %q", args[0], r.Name)
		}
		return r, nil
	}
	if len(args) != 1 {
		return r, usagef("give the rule's NAME, or -f FILE")
	}
	r = client.Rule{Name: args[0], Condition: s.condition}
	actions := 0
	if s.webhook != "" {
		actions++
		r.Action = client.RuleAction{Kind: rules.KindWebhook, URL: s.webhook, Secret: s.secret}
		if s.secretFile != "" {
			if s.secret != "" {
				return r, usagef("give --secret or --secret-file, not both")
			}
			b, err := readLimited(s.secretFile, 4096)
			if err != nil {
				return r, err
			}
			r.Action.Secret = strings.TrimSpace(string(b))
		}
	}
	if s.log {
		actions++
		r.Action = client.RuleAction{Kind: rules.KindLog}
	}
	if s.event {
		actions++
		r.Action = client.RuleAction{Kind: rules.KindEvent}
	}
	if s.mqttTopic != "" {
		actions++
		r.Action = client.RuleAction{Kind: "mqtt", Topic: s.mqttTopic}
	}
	switch {
	case s.condition == "":
		return r, usagef("give the rule's --condition (CEL), or -f FILE")
	case actions != 1:
		return r, usagef("give one action: --webhook URL (with --secret or --secret-file), --mqtt TOPIC, --log or --event")
	case r.Action.Kind != rules.KindWebhook && (s.secret != "" || s.secretFile != ""):
		return r, usagef("--secret and --secret-file go with --webhook")
	}
	return r, nil
}

// readLimited reads a file of at most limit bytes.
func readLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, usagef("%v", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, usagef("%s: %v", path, err)
	}
	if int64(len(b)) > limit {
		return nil, usagef("%s: longer than %d bytes", path, limit)
	}
	return b, nil
}

func newRulesAddCmd(f *devicesFlags) *cobra.Command {
	var (
		s       ruleSpec
		replace bool
	)
	cmd := &cobra.Command{
		Use:   "add NAME --condition EXPR (--webhook URL --secret-file FILE | --log | --event) | add -f FILE",
		Short: "Add a rule (or replace one, with --replace)",
		Long: `Add adds a rule to the node: a NAME (1 to 64 of a-z, 0-9, _ and -), a condition in CEL
(docs/RULES.md lists its variables) and one action. -f FILE takes the whole rule from a
YAML or JSON file of name, condition and action, as in the node's configuration. A rule
that does not compile is refused with the compiler's message. With --replace a rule of
the same name is replaced: it keeps its place in the confirmation order and the matches
waiting in its outbox. It prints the rule as the node has it.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := s.rule(args)
			if err != nil {
				return err
			}
			return f.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				var out client.Rule
				if replace {
					out, _, err = c.PutRule(ctx, r)
				} else {
					out, err = c.AddRule(ctx, r)
				}
				if err != nil {
					return explain(err, "adding rule "+r.Name, "node refused", f.timeout)
				}
				return printRules(cmd.OutOrStdout(), []client.Rule{out})
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&s.file, "file", "f", "", "take the rule from this YAML or JSON `FILE`")
	fl.StringVar(&s.condition, "condition", "", "the condition, a CEL `EXPR` of type bool")
	fl.StringVar(&s.webhook, "webhook", "", "post each match to this `URL`, signed")
	fl.StringVar(&s.secret, "secret", "", "the webhook's HMAC secret, 16 bytes or more (ps shows it: prefer --secret-file)")
	fl.StringVar(&s.secretFile, "secret-file", "", "read the webhook's secret from `FILE`")
	fl.StringVar(&s.mqttTopic, "mqtt", "", "publish each match to this MQTT `TOPIC` (the node needs mqtt-broker or mqtt-listen)")
	fl.BoolVar(&s.log, "log", false, "write a log line for each match")
	fl.BoolVar(&s.event, "event", false, "publish each match on the event feed (kind=rule)")
	fl.BoolVar(&replace, "replace", false, "replace a rule of the same name")
	return cmd
}

func newRulesListCmd(f *devicesFlags) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the node's rules with their figures",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return f.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				rs, err := c.Rules(ctx)
				if err != nil {
					return explain(err, "listing rules", "node refused", f.timeout)
				}
				if asJSON {
					return printJSON(cmd.OutOrStdout(), rs)
				}
				return printRules(cmd.OutOrStdout(), rs)
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the rules as a JSON array, as the API answers")
	return cmd
}

// printRules prints rules as a table.
func printRules(w io.Writer, rs []client.Rule) error {
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSOURCE\tKIND\tMATCHES\tDELIVERED\tPENDING\tDEAD\tERRORS\tCONDITION")
	for _, r := range rs {
		var st client.RuleStats
		if r.Stats != nil {
			st = *r.Stats
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\n", r.Name, r.Source, r.Action.Kind, st.Matches,
			st.Delivered, st.Pending, st.DeadLetters, st.EvalErrors, r.Condition)
	}
	return tw.Flush()
}

// printJSON prints v as indented JSON, with < > & as themselves: conditions
// hold them.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newRulesShowCmd(f *devicesFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "show NAME",
		Short: "Print a rule and its figures as JSON, as the API shows it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return f.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				r, err := c.Rule(ctx, args[0])
				if err != nil {
					return explainRule(err, args[0], "getting", f.timeout)
				}
				return printJSON(cmd.OutOrStdout(), r)
			})
		},
	}
}

// explainRule is explain, with a plain message for a rule that is not
// there.
func explainRule(err error, name, doing string, timeout time.Duration) error {
	if client.IsCode(err, client.CodeNotFound) {
		return &cliError{fmt.Sprintf("the node has no rule %q", name), err}
	}
	return explain(err, doing+" rule "+name, "node refused", timeout)
}

func newRulesRemoveCmd(f *devicesFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "rm NAME",
		Short: "Remove a rule, with its cursor, outbox and dead letters",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return f.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				if err := c.RemoveRule(ctx, args[0]); err != nil {
					return explainRule(err, args[0], "removing", f.timeout)
				}
				return nil
			})
		},
	}
}

func newRulesDeadCmd(f *devicesFlags) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "dead NAME",
		Short: "List a rule's dead letters: matches that failed every attempt",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return f.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				dls, err := c.DeadLetters(ctx, args[0])
				if err != nil {
					return explainRule(err, args[0], "reading the dead letters of", f.timeout)
				}
				if asJSON {
					return printJSON(cmd.OutOrStdout(), dls)
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 2, 8, 2, ' ', 0)
				fmt.Fprintln(tw, "FAILED_AT\tATTEMPTS\tDELIVERY\tMESSAGE\tLAST_ERROR")
				for _, d := range dls {
					var m rules.Match
					json.Unmarshal(d.Match, &m)
					fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", time.Unix(0, d.FailedAt).UTC().Format(time.RFC3339),
						d.Attempts, m.Delivery, m.Message.ID, d.LastError)
				}
				return tw.Flush()
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the dead letters as JSON, as the API answers")
	return cmd
}

func newRulesTestCmd(f *devicesFlags) *cobra.Command {
	var (
		t         client.RuleTest
		condition string
		asJSON    bool
	)
	cmd := &cobra.Command{
		Use:   "test (NAME | --condition EXPR) [--from TIME] [--to TIME] [--issuer KEY] [--limit N]",
		Short: "Replay stored messages through a rule and print what it would have fired",
		Long: `Test replays the confirmed messages the node stores whose timestamp is in [--from, --to)
(one device's with --issuer, at most --limit) through the rule NAME of the node, or
through --condition, and prints each match (id, issuer, timestamp, payload), then a
summary. The node acts on nothing. Times are RFC 3339 (2026-01-02T15:04:05Z) or Unix
nanoseconds; the default is every stored message.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case len(args) == 1 && condition == "":
				t.Name = args[0]
			case len(args) == 0 && condition != "":
				t.Rule = &client.Rule{Name: "test", Condition: condition}
			default:
				return usagef("give a rule's NAME or --condition, not both")
			}
			for _, tm := range []struct{ flag, v string }{{"--from", t.From}, {"--to", t.To}} {
				if _, err := client.ParseTime(tm.v); tm.v != "" && err != nil {
					return usagef("%s: %v", tm.flag, err)
				}
			}
			return f.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				res, err := c.TestRule(ctx, t)
				if err != nil {
					return explainRule(err, t.Name, "testing", f.timeout)
				}
				if asJSON {
					return printJSON(cmd.OutOrStdout(), res)
				}
				return printTest(cmd.OutOrStdout(), res)
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&condition, "condition", "", "test this CEL `EXPR` instead of a rule of the node")
	fl.StringVar(&t.From, "from", "", "from this `TIME` on, inclusive; default the start")
	fl.StringVar(&t.To, "to", "", "up to this `TIME`, exclusive; default no end")
	fl.StringVar(&t.Issuer, "issuer", "", "only this device's messages (its public `KEY`)")
	fl.IntVar(&t.Limit, "limit", 0, "replay at most this many messages (default and most 100000)")
	fl.BoolVar(&asJSON, "json", false, "print the result as JSON, as the API answers")
	return cmd
}

// printTest prints a test's matches, one a line, and a summary.
func printTest(w io.Writer, res *client.RuleTestResult) error {
	for _, raw := range res.Matches {
		var m rules.Match
		if err := json.Unmarshal(raw, &m); err != nil {
			return fmt.Errorf("a match of the node's answer: %w", err)
		}
		fmt.Fprintf(w, "%s  %s  %s  %s\n", m.Message.ID, m.Message.Issuer, m.Message.Timestamp.Format(time.RFC3339Nano), m.Message.Payload)
	}
	for _, e := range res.Errors {
		fmt.Fprintf(w, "error on %s: %s\n", e.ID, e.Error)
	}
	more := ""
	if res.More {
		more = "; more messages in the range were left out (--limit)"
	}
	_, err := fmt.Fprintf(w, "%d evaluated, %d matched, %d errors%s\n", res.Evaluated, len(res.Matches), len(res.Errors), more)
	return err
}
