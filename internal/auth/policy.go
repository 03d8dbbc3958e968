package auth

import (
	"slices"
	"strings"
)

// Policy decides who may have an account. With either list non-empty, only
// listed people get in, at every sign-in, refresh and request, so removing
// someone from a list locks them out. With both lists empty, existing users
// keep their access and new sign-ups depend on OpenSignup.
type Policy struct {
	Emails     []string // compared case-insensitively
	AppleIDs   []string // compared exactly
	OpenSignup bool
}

// Listed reports whether an allow-list is in force.
func (p Policy) Listed() bool { return len(p.Emails)+len(p.AppleIDs) > 0 }

// Allows reports whether an existing account may be used. email is only
// trusted when Apple has verified it; pass "" otherwise.
func (p Policy) Allows(email, appleID string) bool {
	if !p.Listed() {
		return true
	}
	listed := func(e string) bool { return strings.EqualFold(e, email) }
	return slices.Contains(p.AppleIDs, appleID) || (email != "" && slices.ContainsFunc(p.Emails, listed))
}

// MaySignUp reports whether a new account may be created.
func (p Policy) MaySignUp(email, appleID string) bool {
	if !p.Listed() {
		return p.OpenSignup
	}
	return p.Allows(email, appleID)
}
