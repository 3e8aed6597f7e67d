package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/weftnet/weft/api"
)

// readAuthSettings reads the operators' API tokens and who may read
// (docs/OPERATING.md, "Operator tokens"). No message it returns holds a
// token: a token is named by its setting and its place.
func readAuthSettings(s *settings, ns *nodeSettings) error {
	var errs []error
	for i, v := range s.list("api-tokens") {
		t, err := api.ParseToken(v)
		if err != nil {
			errs = append(errs, badSetting(s, "api-tokens", "token %d: %v", i+1, err))
			continue
		}
		ns.tokens = append(ns.tokens, t)
	}
	if path := s.str("api-token-file"); path != "" {
		ts, err := readTokenFile(path)
		if err != nil {
			errs = append(errs, badSetting(s, "api-token-file", "%v", err))
		}
		ns.tokens = append(ns.tokens, ts...)
	}
	names, secrets := map[string]bool{}, map[string]bool{}
	for _, t := range ns.tokens {
		if names[t.Name] {
			errs = append(errs, badSetting(s, "api-tokens", "two tokens are named %s", t.Name))
		}
		if secrets[t.Secret] {
			errs = append(errs, badSetting(s, "api-tokens", "two tokens are the same (one is %s's)", t.Name))
		}
		names[t.Name], secrets[t.Secret] = true, true
	}
	ns.readAuth = s.boolean("api-read-auth")
	if ns.readAuth && len(ns.tokens) == 0 {
		errs = append(errs, badSetting(s, "api-read-auth", "true, but no token is configured (api-tokens or api-token-file): nobody could read"))
	}
	ns.cfg.DevicesClosed = s.boolean("devices-closed")
	return errors.Join(errs...)
}

// readTokenFile reads a file of NAME:TOKEN lines; blank lines and lines
// that begin with # are skipped.
func readTokenFile(path string) ([]api.Token, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var (
		out  []api.Token
		errs []error
	)
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		t, err := api.ParseToken(line)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s line %d: %w", path, n, err))
			continue
		}
		out = append(out, t)
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", path, err))
	}
	return out, errors.Join(errs...)
}
