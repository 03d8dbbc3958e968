package main

import "sync"

// user is one signed-in user and its session token. Requests hold mu for
// reading while under way; a refresh holds it for writing, so no request
// ever carries a token older than the one before the latest rotation (the
// service would take that for a copied token).
type user struct {
	mu    sync.RWMutex
	token string

	convMu sync.Mutex
	convs  []string

	devMu   sync.Mutex
	devices []string // registered device tokens, at most maxDevices
}

const maxDevices = 16

func (u *user) addConv(id string) {
	if id == "" {
		return
	}
	u.convMu.Lock()
	defer u.convMu.Unlock()
	u.convs = append(u.convs, id)
}

func (u *user) conversations() []string {
	u.convMu.Lock()
	defer u.convMu.Unlock()
	return u.convs
}
