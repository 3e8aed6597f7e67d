package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/weftnet/weft/api/wire"
)

// Operator authentication (docs/API.md, "Operator authentication"): the
// endpoints that change the node's state (the device registry) take a
// bearer token of the node's configuration, and so do the read endpoints
// when Options.ReadAuth closes them. A token is never logged: not on a
// refusal, not in an error.

// Token is an operator's API token: Name is who the change log says made
// a change; Secret is what the operator sends as
// "Authorization: Bearer SECRET".
type Token struct {
	Name   string
	Secret string
}

// The bounds of a token (ParseToken).
const (
	MaxTokenName = 32
	MinSecret    = 16
	MaxSecret    = 256
)

// ErrToken: a token of the configuration is not acceptable. Its message
// never holds the secret.
var ErrToken = errors.New("api: bad token")

// ParseToken parses NAME:SECRET. A name is 1 to MaxTokenName characters
// of A-Z, a-z, 0-9, '.', '_' and '-'; a secret is MinSecret to MaxSecret
// characters of A-Z, a-z, 0-9 and "-._~+/=" (hex, base64 and URL-safe
// base64 all qualify).
func ParseToken(s string) (Token, error) {
	name, secret, ok := strings.Cut(s, ":")
	if !ok {
		return Token{}, fmt.Errorf("%w: want NAME:TOKEN", ErrToken)
	}
	if name == "" || len(name) > MaxTokenName || !onlyChars(name, "._-") {
		return Token{}, fmt.Errorf("%w: the name before the colon: want 1 to %d of A-Z a-z 0-9 . _ -", ErrToken, MaxTokenName)
	}
	if len(secret) < MinSecret || len(secret) > MaxSecret || !onlyChars(secret, "-._~+/=") {
		return Token{}, fmt.Errorf("%w: the token of %s: want %d to %d of A-Z a-z 0-9 - . _ ~ + / =", ErrToken, name, MinSecret, MaxSecret)
	}
	return Token{Name: name, Secret: secret}, nil
}

func onlyChars(s, extra string) bool {
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune(extra, c)) {
			return false
		}
	}
	return true
}

// auth checks requests' tokens. It keeps the SHA-256 of each secret, so
// that comparing takes the same time whatever the lengths.
type auth struct {
	names    []string
	sums     [][32]byte
	readAuth bool
}

func newAuth(tokens []Token, readAuth bool) auth {
	a := auth{readAuth: readAuth}
	for _, t := range tokens {
		a.names = append(a.names, t.Name)
		a.sums = append(a.sums, sha256.Sum256([]byte(t.Secret)))
	}
	return a
}

// who returns the name of the token r carries, compared in constant time
// with every configured one; ok is false if r carries none that matches.
func (a *auth) who(r *http.Request) (name string, present, ok bool) {
	h := r.Header.Get("Authorization")
	scheme, secret, _ := strings.Cut(h, " ")
	if h == "" || !strings.EqualFold(scheme, "Bearer") {
		return "", false, false
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(secret)))
	found := -1
	for i := range a.sums {
		if subtle.ConstantTimeCompare(sum[:], a.sums[i][:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return "", true, false
	}
	return a.names[found], true, true
}

// require answers r with 401 or 403 unless it carries a configured token;
// it returns the token's name and whether r may go on.
func (s *Server) require(w http.ResponseWriter, r *http.Request) (string, bool) {
	if len(s.auth.sums) == 0 {
		writeError(w, wire.CodeForbidden, "this node has no API token configured, so it refuses "+r.Method+" "+r.URL.Path+
			": give it one with the setting api-tokens NAME:TOKEN or api-token-file FILE (docs/OPERATING.md)")
		return "", false
	}
	name, present, ok := s.auth.who(r)
	switch {
	case !present:
		w.Header().Set("WWW-Authenticate", `Bearer realm="weft"`)
		writeError(w, wire.CodeUnauthorized, r.Method+" "+r.URL.Path+" needs an API token: Authorization: Bearer TOKEN")
	case !ok:
		w.Header().Set("WWW-Authenticate", `Bearer realm="weft", error="invalid_token"`)
		writeError(w, wire.CodeUnauthorized, "the API token is not one of this node's")
		s.log.Warn().Str("remote", r.RemoteAddr).Str("method", r.Method).Str("path", r.URL.Path).
			Msg("api: refused a request with an unknown token")
	}
	return name, ok
}

// operator wraps a state-changing handler: it runs only for a request
// with a configured token, and is told the token's name.
func (s *Server) operator(h func(w http.ResponseWriter, r *http.Request, who string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if who, ok := s.require(w, r); ok {
			h(w, r, who)
		}
	}
}

// openReads are the paths a GET may read without a token when
// Options.ReadAuth closes the others: what a device needs to submit, and
// the probes.
var openReads = []string{wire.PathTips, wire.PathHealth, wire.PathReady}

// reads answers a read of a closed API (Options.ReadAuth) that carries no
// configured token, and reports whether r may go on.
func (s *Server) reads(w http.ResponseWriter, r *http.Request) bool {
	if !s.auth.readAuth || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		return true
	}
	for _, p := range openReads {
		if r.URL.Path == p {
			return true
		}
	}
	_, ok := s.require(w, r)
	return ok
}
