// Verify certhook's x-infisical-signature in Go (standard library only).
package certhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"time"
)

const tolerance = 5 * time.Minute

// VerifyInfisical checks header "t=<unix ms>,v1=<hex>[,v1=<hex>…]" over the raw body.
// It accepts a match with any v1= entry and any secret (certhook signs with both
// secrets during a rotation).
func VerifyInfisical(header string, rawBody []byte, secrets []string, now time.Time) bool {
	var t string
	var sigs [][]byte
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			t = v
		case "v1":
			if b, err := hex.DecodeString(v); err == nil {
				sigs = append(sigs, b)
			}
		}
	}
	ms, err := strconv.ParseInt(t, 10, 64)
	if err != nil || len(sigs) == 0 {
		return false
	}
	if d := now.Sub(time.UnixMilli(ms)); d > tolerance || d < -tolerance {
		return false
	}
	for _, secret := range secrets {
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write([]byte(t + "."))
		mac.Write(rawBody)
		expected := mac.Sum(nil)
		for _, s := range sigs {
			if hmac.Equal(s, expected) {
				return true
			}
		}
	}
	return false
}
