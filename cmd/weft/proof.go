package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/weftnet/weft/client"
	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/proof"
)

// newProofCmd is `weft proof ID`: write the node's proof for a message.
func newProofCmd() *cobra.Command {
	var (
		node    string
		message string
		wait    bool
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "proof [--wait] ID | proof --message FILE",
		Short: "Write the proof that a message was recorded and confirmed, as JSON",
		Long: `Proof asks --node for the proof of message ID and writes it to standard output:
the message, and for validators whose weight reaches the threshold, their signed
checkpoints covering it with the Merkle paths (docs/PROTOCOL.md 8.4). Check it
offline with weft verify. With --message, it sends the message's bytes from FILE
("-": standard input) instead, for a message the node no longer holds.

Until enough checkpoints cover the message the node answers no_proof, and weft
proof says when to ask again; with --wait it asks again then, until --timeout.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if (message == "") == (len(args) == 1) && len(args) <= 1 {
				return nil
			}
			return usagef("proof: give one message ID, or --message FILE")
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := nodeClient(node)
			if err != nil {
				return err
			}
			ctx, cancel := withTimeout(cmd.Context(), timeout)
			defer cancel()
			var (
				ask  func() (*proof.Document, error)
				what string
			)
			if message != "" {
				raw, err := readInput(cmd.InOrStdin(), message, int64(dag.MinSize+dag.MaxPayload))
				if err != nil {
					return err
				}
				what = "the message in " + message
				ask = func() (*proof.Document, error) { return c.ProofFor(ctx, raw) }
			} else {
				id, err := dag.ParseID(args[0])
				if err != nil {
					return usagef("proof: %q is not a message id (64 hex characters)", args[0])
				}
				what = "message " + id.String()
				ask = func() (*proof.Document, error) { return c.Proof(ctx, id) }
			}
			doc, err := ask()
			for wait && client.IsCode(err, client.CodeNoProof) {
				var ae *client.APIError
				errors.As(err, &ae)
				select {
				case <-time.After(max(ae.RetryAfter, 100*time.Millisecond)):
				case <-ctx.Done():
					return explainProof(err, what, timeout)
				}
				doc, err = ask()
			}
			if err != nil {
				return explainProof(err, what, timeout)
			}
			b, err := json.MarshalIndent(doc, "", "  ")
			if err != nil {
				return fmt.Errorf("proof: %w", err)
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s\n", b)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&node, "node", defaultNode, "the node's API `URL`")
	f.BoolVar(&wait, "wait", false, "while the node has no proof yet, ask again when it says, until --timeout")
	f.StringVar(&message, "message", "", "send the message's canonical encoding from `FILE` (- for standard input)")
	f.DurationVar(&timeout, "timeout", 30*time.Second, "give up after this long (0: never)")
	return cmd
}

func explainProof(err error, what string, timeout time.Duration) error {
	var ae *client.APIError
	if errors.As(err, &ae) && ae.Code == client.CodeNoProof {
		return &cliError{fmt.Sprintf("no proof of %s yet: %s; ask again in %v", what, ae.Message, ae.RetryAfter), err}
	}
	if client.IsCode(err, client.CodeNotFound) {
		return &cliError{fmt.Sprintf("the node has no %s", what), err}
	}
	return explain(err, "getting the proof of "+what, "node refused", timeout)
}

// readInput reads at most limit bytes of the file name, or of stdin for "-".
func readInput(stdin io.Reader, name string, limit int64) ([]byte, error) {
	r := stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s: over %d bytes", name, limit)
	}
	return b, nil
}

// newVerifyCmd is `weft verify proof.json`: check a proof offline.
func newVerifyCmd() *cobra.Command {
	var (
		network    string
		validators []string
		file       string
		threshold  string
	)
	cmd := &cobra.Command{
		Use:   "verify PROOF.json --network NAME (--validator KEY:WEIGHT ... | --validators FILE)",
		Short: "Check a proof offline against the validators you trust",
		Long: `Verify checks a proof document (weft proof, or GET /api/v1/messages/{id}/proof)
without contacting any node: the message decodes and its ID matches, each
checkpoint is signed by a validator you listed, each Merkle path leads to its
checkpoint's root, and the distinct validators weigh at least the threshold
(docs/PROTOCOL.md 8.4). PROOF.json "-" reads standard input.

--validators FILE lists one KEY or KEY:WEIGHT a line; blank lines and lines
starting with # are skipped. It exits 0 with a one-line summary when the proof
holds, 1 with the reason when it does not.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			trust, err := readTrust(network, validators, file, threshold)
			if err != nil {
				return err
			}
			b, err := readInput(cmd.InOrStdin(), args[0], proof.MaxDocumentSize)
			if err != nil {
				return err
			}
			doc, err := proof.ReadDocument(strings.NewReader(string(b)))
			if err != nil {
				return &cliError{"proof does not hold: " + err.Error(), err}
			}
			res, err := proof.Verify(doc, trust)
			if err != nil {
				return &cliError{"proof does not hold: " + err.Error(), err}
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "ok: message %s of issuer %s (seq %d): checkpoints of %d validators, weight %d of %d, threshold %d\n",
				res.Message.ID(), res.Message.Issuer, res.Message.Seq, len(res.Vouching), res.Weight, res.Total, res.Need)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&network, "network", "", "the network's `NAME`")
	f.StringSliceVar(&validators, "validator", nil, "a trusted validator, KEY:WEIGHT or KEY for weight 1; repeatable")
	f.StringVar(&file, "validators", "", "read the trusted validators from `FILE`")
	f.StringVar(&threshold, "threshold", "2/3", "the share of the total weight that confirms, `NUM/DEN`")
	cmd.MarkFlagRequired("network")
	cmd.MarkFlagsOneRequired("validator", "validators")
	return cmd
}

func readTrust(network string, vals []string, file, threshold string) (proof.Trust, error) {
	t := proof.Trust{Network: dag.NetworkIDFromName(network)}
	num, den, ok := strings.Cut(threshold, "/")
	var err1, err2 error
	t.ThresholdNum, err1 = strconv.ParseUint(num, 10, 32)
	t.ThresholdDen, err2 = strconv.ParseUint(den, 10, 32)
	if !ok || err1 != nil || err2 != nil || t.ThresholdNum == 0 || t.ThresholdNum > t.ThresholdDen {
		return t, usagef("verify: --threshold %q: want NUM/DEN with 0 < NUM <= DEN", threshold)
	}
	if file != "" {
		f, err := os.Open(file)
		if err != nil {
			return t, usagef("verify: --validators: %v", err)
		}
		defer f.Close()
		sc := bufio.NewScanner(io.LimitReader(f, 1<<20))
		for line := 1; sc.Scan(); line++ {
			s := strings.TrimSpace(sc.Text())
			if s == "" || strings.HasPrefix(s, "#") {
				continue
			}
			v, err := parseValidator(s)
			if err != nil {
				return t, usagef("verify: %s:%d: %q: %v", file, line, s, err)
			}
			t.Validators = append(t.Validators, v)
		}
		if err := sc.Err(); err != nil {
			return t, usagef("verify: --validators: %v", err)
		}
	}
	for _, s := range vals {
		v, err := parseValidator(s)
		if err != nil {
			return t, usagef("verify: --validator %q: %v", s, err)
		}
		t.Validators = append(t.Validators, v)
	}
	if len(t.Validators) == 0 {
		return t, usagef("verify: no validators: give --validator or --validators")
	}
	return t, nil
}
