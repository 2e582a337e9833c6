package certhook_test

// Vectors computed independently of any certhook code (the same ones crates/core's sign
// tests pin certhook's signer to, so this checks the snippet against what certhook sends):
//
//	S1='certhook-test-secret-0123456789abcdef'; S2='previous-secret-for-rotation-0123456789'
//	B='{"hello":"world"}'
//	printf '%s' "1700000000000.$B" | openssl dgst -sha256 -hmac "$S1"   # 7fa737…43d1 (hex1)
//	printf '%s' "1700000000000.$B" | openssl dgst -sha256 -hmac "$S2"   # fbb5e2…365a (hex2)
//	# a non-ASCII body with a trailing newline: the raw bytes are what is signed
//	printf '1700000000000.{"commonName":"caf\xc3\xa9.example.com"}\n' \
//	  | openssl dgst -sha256 -hmac "$S1"                                 # 055e1a…2ba8 (hexUTF8)
//
// Cross-checked with Python's hmac:
//
//	python3 -c 'import hmac,hashlib,sys; print(hmac.new(sys.argv[1].encode(),
//	  b"1700000000000." + sys.argv[2].encode(), hashlib.sha256).hexdigest())' "$S1" "$B"

import (
	"strings"
	"testing"
	"time"

	certhook "github.com/certhook/certhook/ops/receivers"
)

const (
	s1      = "certhook-test-secret-0123456789abcdef"
	s2      = "previous-secret-for-rotation-0123456789"
	body    = `{"hello":"world"}`
	hex1    = "7fa7371ff3e71c6ca02063b681df2ef2c0420206e29c7eab656a79618a8543d1"
	hex2    = "fbb5e2d354e524ed35ee497ff8fc3f1e04ec94921b32c842923bccfc69fd365a"
	bodyU   = "{\"commonName\":\"caf\xc3\xa9.example.com\"}\n"
	hexUTF8 = "055e1aaf9bc645d212cdeb279b71486d7e938b49a0dc105fe344a5249db12ba8"
	tMs     = 1700000000000
)

var signedAt = time.UnixMilli(tMs)

func TestVerifyInfisical(t *testing.T) {
	one := "t=1700000000000,v1=" + hex1
	both := "t=1700000000000,v1=" + hex1 + ",v1=" + hex2
	cases := []struct {
		name    string
		header  string
		body    string
		secrets []string
		now     time.Time
		want    bool
	}{
		{"valid", one, body, []string{s1}, signedAt, true},
		{"valid a second later", one, body, []string{s1}, signedAt.Add(time.Second), true},
		{"raw non-ASCII body", "t=1700000000000,v1=" + hexUTF8, bodyU, []string{s1}, signedAt, true},
		{"spaces after commas", "t=1700000000000, v1=" + hex1, body, []string{s1}, signedAt, true},
		// rotation: one v1= per active secret, newest first; any match is accepted
		{"rotation, receiver has the new secret", both, body, []string{s1}, signedAt, true},
		{"rotation, receiver still has the old secret", both, body, []string{s2}, signedAt, true},
		{"receiver holds both secrets", "t=1700000000000,v1=" + hex2, body, []string{s1, s2}, signedAt, true},
		// at the 5-minute tolerance, and just past it either way
		{"exactly 5 minutes old", one, body, []string{s1}, signedAt.Add(5 * time.Minute), true},
		{"stale timestamp", one, body, []string{s1}, signedAt.Add(5*time.Minute + time.Millisecond), false},
		{"an hour old", one, body, []string{s1}, signedAt.Add(time.Hour), false},
		{"from the future", one, body, []string{s1}, signedAt.Add(-5*time.Minute - time.Millisecond), false},
		// tampering
		{"tampered body", one, `{"hello":"World"}`, []string{s1}, signedAt, false},
		{"re-serialized body", one, `{"hello": "world"}`, []string{s1}, signedAt, false},
		{"trailing newline added", one, body + "\n", []string{s1}, signedAt, false},
		{"wrong secret", one, body, []string{"other-secret-xxxxxxxxxxxxxxxxxxxxxx"}, signedAt, false},
		{"no secrets", one, body, nil, signedAt, false},
		{"timestamp changed", "t=1700000000001,v1=" + hex1, body, []string{s1}, signedAt, false},
		{"signature of another secret only", "t=1700000000000,v1=" + hex2, body, []string{s1}, signedAt, false},
		{"one flipped hex digit", "t=1700000000000,v1=" + hex1[:63] + "0", body, []string{s1}, signedAt, false},
		{"truncated signature", "t=1700000000000,v1=" + hex1[:62], body, []string{s1}, signedAt, false},
		// malformed headers
		{"empty header", "", body, []string{s1}, signedAt, false},
		{"no t=", "v1=" + hex1, body, []string{s1}, signedAt, false},
		{"no v1=", "t=1700000000000", body, []string{s1}, signedAt, false},
		{"empty v1=", "t=1700000000000,v1=", body, []string{s1}, signedAt, false},
		{"t not a number", "t=abc,v1=" + hex1, body, []string{s1}, signedAt, false},
		{"v1 not hex", "t=1700000000000,v1=" + strings.Repeat("zz", 32), body, []string{s1}, signedAt, false},
		{"v0 instead of v1", "t=1700000000000,v0=" + hex1, body, []string{s1}, signedAt, false},
	}
	for _, c := range cases {
		if got := certhook.VerifyInfisical(c.header, []byte(c.body), c.secrets, c.now); got != c.want {
			t.Errorf("%s: VerifyInfisical(%q, %q, %q, %v) = %v, want %v",
				c.name, c.header, c.body, c.secrets, c.now.UnixMilli(), got, c.want)
		}
	}
}
