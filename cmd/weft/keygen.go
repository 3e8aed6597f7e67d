package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/weftnet/weft/client"
)

// newKeygenCmd is `weft keygen --out FILE`: a new ed25519 key in a key
// file. It prints the public key only; the private key goes to the file
// and nowhere else.
func newKeygenCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "keygen --out FILE",
		Short: "Write a new device or node key to a file and print its public key",
		Long: `Keygen writes a new ed25519 key to FILE (created with mode 0600; an existing
file is never overwritten): its 32-byte seed as 64 hex characters and a newline.
It prints the public key, in hex, and nothing else.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return usagef("keygen: --out FILE is required")
			}
			pub, key, err := ed25519.GenerateKey(rand.Reader)
			if err != nil {
				return fmt.Errorf("keygen: %w", err)
			}
			if err := client.WriteKeyFile(out, key); err != nil {
				return fmt.Errorf("keygen: %w", err)
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), hex.EncodeToString(pub))
			return err
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "the key file to create (required)")
	return cmd
}
