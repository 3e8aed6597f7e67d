package rules

// TestResult is what a rule would have done with a list of messages.
type TestResult struct {
	Evaluated int     // messages evaluated
	Matches   []Match // what the rule would have fired, in the messages' order
	Errors    []EvalError
}

// EvalError is a message a condition failed on, which the engine counts
// and skips.
type EvalError struct {
	Confirmation uint64
	ID           string
	Err          string
}

// Test replays messages through a rule, as an engine would evaluate them,
// and returns what the rule would have fired, without acting. It refuses a
// rule that does not compile as Compile does; the action is checked but not
// run, so a kind that only an engine's Config.Kinds knows is accepted.
func Test(r Rule, msgs []Message, lookup Lookup) (*TestResult, error) {
	c, err := Compile(r)
	if err != nil {
		return nil, err
	}
	res := &TestResult{Evaluated: len(msgs)}
	for i := range msgs {
		v := newVars(&msgs[i], lookup)
		ok, err := c.prog.match(v)
		switch {
		case err != nil:
			res.Errors = append(res.Errors, EvalError{Confirmation: msgs[i].Confirmation, ID: msgs[i].Msg.ID().String(), Err: err.Error()})
		case ok:
			res.Matches = append(res.Matches, *newMatch(r.Name, v.document()))
		}
	}
	return res, nil
}
