package gossip

import (
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"time"

	"github.com/weftnet/weft/dag"
)

// NewCertificate returns the self-signed X.509 certificate of a node
// identity: its public key is the node key, its subject the key in hex, and
// it is deterministic (the same identity gives the same bytes). Nobody
// checks its dates or chain: peers pin the key (see PeerKey). Safe from any
// goroutine.
func NewCertificate(id ed25519.PrivateKey) (tls.Certificate, error) {
	if len(id) != ed25519.PrivateKeySize {
		return tls.Certificate{}, fmt.Errorf("%w: identity of %d bytes", ErrConfig, len(id))
	}
	pub := id.Public().(ed25519.PublicKey)
	h := sha256.Sum256(append([]byte("weft gossip certificate serial "), pub...))
	h[0] &= 0x7f // a positive serial number
	name := fmt.Sprintf("weft node %x", []byte(pub))
	tmpl := &x509.Certificate{
		SerialNumber:          new(big.Int).SetBytes(h[:16]),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:              time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		DNSNames:              []string{serverName},
	}
	der, err := x509.CreateCertificate(nil, tmpl, tmpl, pub, id)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("gossip: certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("gossip: certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: id, Leaf: leaf}, nil
}

// serverName is the TLS server name every dial uses; nothing checks it
// against the certificate, the key is what is pinned.
const serverName = "weft"

// PeerKey returns the node key of the peer of a TLS connection (for a QUIC
// connection, conn.ConnectionState().TLS): the ed25519 public key of the
// one self-signed certificate it presented. It fails with ErrBadCertificate
// for anything else.
func PeerKey(cs tls.ConnectionState) (dag.PublicKey, error) {
	if len(cs.PeerCertificates) != 1 {
		return dag.PublicKey{}, fmt.Errorf("%w: %d certificates", ErrBadCertificate, len(cs.PeerCertificates))
	}
	return certKey(cs.PeerCertificates[0])
}

// keyFromRaw parses the certificates a peer presented in the handshake.
func keyFromRaw(raw [][]byte) (dag.PublicKey, error) {
	if len(raw) != 1 {
		return dag.PublicKey{}, fmt.Errorf("%w: %d certificates, want 1", ErrBadCertificate, len(raw))
	}
	cert, err := x509.ParseCertificate(raw[0])
	if err != nil {
		return dag.PublicKey{}, fmt.Errorf("%w: %v", ErrBadCertificate, err)
	}
	return certKey(cert)
}

// certKey checks that cert is an ed25519 certificate signed by its own key
// and returns the key. The TLS handshake itself proves that the peer holds
// the private key (CertificateVerify); the self-signature only rejects
// certificates that were not made the way NewCertificate makes them.
func certKey(cert *x509.Certificate) (dag.PublicKey, error) {
	var k dag.PublicKey
	pub, ok := cert.PublicKey.(ed25519.PublicKey)
	if !ok || len(pub) != ed25519.PublicKeySize {
		return k, fmt.Errorf("%w: key is %T, want ed25519", ErrBadCertificate, cert.PublicKey)
	}
	if err := cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature); err != nil {
		return k, fmt.Errorf("%w: not self-signed: %v", ErrBadCertificate, err)
	}
	copy(k[:], pub)
	return k, nil
}

// serverTLS is the TLS config of the listener: TLS 1.3, ALPN weft/1, a
// client certificate required and admitted by key (admit), no session
// resumption (a resumed session would skip the certificate check).
func (t *Transport) serverTLS() *tls.Config {
	return &tls.Config{
		MinVersion:             tls.VersionTLS13,
		Certificates:           []tls.Certificate{t.cert},
		NextProtos:             []string{ALPN},
		ClientAuth:             tls.RequireAnyClientCert,
		SessionTicketsDisabled: true,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			key, err := keyFromRaw(raw)
			if err == nil {
				err = t.admit(key)
			}
			if err != nil {
				t.refusals.Warn().Err(err).Str("peer", key.String()).Msg("gossip: refused a connection in the TLS handshake")
			}
			return err
		},
	}
}

// clientTLS is the TLS config for dialling the peer with key want: the
// server must present exactly that key. InsecureSkipVerify turns off the
// CA-chain check only; VerifyPeerCertificate does the pinning.
func (t *Transport) clientTLS(want dag.PublicKey) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		Certificates:       []tls.Certificate{t.cert},
		NextProtos:         []string{ALPN},
		ServerName:         serverName,
		InsecureSkipVerify: true,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			key, err := keyFromRaw(raw)
			if err != nil {
				return err
			}
			if key != want {
				return fmt.Errorf("%w: dialled %s, got %s", ErrWrongKey, want, key)
			}
			return nil
		},
	}
}
