package node

import "time"

// rateMeter estimates messages and confirmations per second over the last
// few seconds: an exponentially weighted average updated by the core loop.
type rateMeter struct {
	last           time.Time
	acc            uint64 // messages since last
	confLast       uint64
	msgs, confirms float64
}

const rateWindow = 5 * time.Second

func (r *rateMeter) add(now time.Time, msgs, confirmedTotal uint64) {
	r.acc += msgs
	if r.last.IsZero() {
		r.last, r.confLast = now, confirmedTotal
		return
	}
	dt := now.Sub(r.last)
	if dt < 200*time.Millisecond {
		return
	}
	w := min(1, dt.Seconds()/rateWindow.Seconds())
	r.msgs += w * (float64(r.acc)/dt.Seconds() - r.msgs)
	r.confirms += w * (float64(confirmedTotal-r.confLast)/dt.Seconds() - r.confirms)
	r.last, r.acc, r.confLast = now, 0, confirmedTotal
}

func (r *rateMeter) rates() (msgs, confirms float64) { return r.msgs, r.confirms }
