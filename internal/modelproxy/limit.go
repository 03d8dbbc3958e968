package modelproxy

import "context"

// maxInFlight caps a session's concurrent upstream requests. The CLI
// rarely has more than a couple in flight (its main loop, a sub-agent, a
// token count); a tool holding the token could otherwise start any number
// at once, and a turn's spend, checked against the budget only before the
// next turn, would grow with them.
const maxInFlight = 4

// acquire takes one of the session's upstream slots, waiting while all are
// taken until one frees, the client goes away (ctx) or the session ends; it
// reports whether it got one, which release gives back.
//
// It waits rather than answering 429: a waiting request costs a goroutine
// and no upstream usage, so waiting limits a hostile tool as well as a
// refusal would, while a 429 would reach the CLI itself whenever it
// legitimately goes over the cap (several parallel sub-agents), making it
// back off and retry, or fail the turn once its retries run out. Waiting
// only slows it down. The wait is bounded by the client, whose own timeout
// gives up, and by the session, which ends with the turn.
func (s *Session) acquire(ctx context.Context, route string) bool {
	select {
	case s.slots <- struct{}{}:
	default:
		s.p.log.Debug("modelproxy: session at its concurrency cap, waiting", "session", s.id, "route", route, "cap", maxInFlight)
		select {
		case s.slots <- struct{}{}:
		case <-ctx.Done():
			s.p.log.Debug("modelproxy: client gave up waiting", "session", s.id, "route", route)
			return false
		case <-s.ctx.Done():
			return false
		}
	}
	// A slot and the session's end can be ready at once; the end wins.
	if s.ctx.Err() != nil {
		s.release()
		return false
	}
	return true
}

func (s *Session) release() { <-s.slots }
