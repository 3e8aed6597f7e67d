package rules

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"sync"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/cost"
	"cel.dev/cel-go/common/types"

	"github.com/weftnet/weft/dag"
)

// Limits on a rule. A condition longer than MaxConditionLen is refused
// before it is parsed; one whose evaluation on a message costs more than
// CostLimit (in CEL's cost units, roughly one per operation and per element
// a comprehension visits) stops with an error, counted like any other
// evaluation error.
const (
	MaxNameLen      = 64
	MaxConditionLen = 4096
	MaxURLLen       = 2048
	CostLimit       = 10_000
	// MaxTags and MaxTagLen bound what a condition sees of a device's
	// tags: those past MaxTags, or longer than MaxTagLen, are left out.
	MaxTags   = 64
	MaxTagLen = 64
	// maxNesting bounds the parser's recursion: a condition nested deeper
	// is refused.
	maxNesting = 32
)

// The kinds of action every engine knows. Others are added through
// Config.Kinds.
const (
	KindLog     = "log"
	KindEvent   = "event"
	KindWebhook = "webhook"
)

// ErrInvalid is what every refused rule wraps: a bad name, a bad action, or
// a condition that does not compile (a *CompileError).
var ErrInvalid = errors.New("rules: invalid rule")

// A Rule acts on the confirmed messages that satisfy its condition.
type Rule struct {
	// Name identifies the rule: 1 to MaxNameLen characters of [a-z0-9_-].
	// A rule's cursor, outbox and dead letters are kept under its name.
	Name string `json:"name" yaml:"name"`
	// Condition is a CEL expression of type bool over the variables that
	// the package comment lists.
	Condition string `json:"condition" yaml:"condition"`
	Action    Action `json:"action" yaml:"action"`
}

// Action says what a rule does with a match.
type Action struct {
	// Kind is KindLog, KindEvent, KindWebhook, or a kind of Config.Kinds.
	Kind string `json:"kind" yaml:"kind"`
	// URL is where a webhook posts: an absolute http or https URL.
	URL string `json:"url,omitempty" yaml:"url,omitempty"`
	// Secret is the webhook's HMAC-SHA256 key, at least 16 bytes.
	Secret string `json:"secret,omitempty" yaml:"secret,omitempty"`
	// Topic is where an mqtt action publishes (a kind of Config.Kinds,
	// which checks it).
	Topic string `json:"topic,omitempty" yaml:"topic,omitempty"`
}

// CompileError is the refusal of a condition that does not compile or is not
// of type bool. Msg is the compiler's message.
type CompileError struct {
	Rule string
	Msg  string
}

func (e *CompileError) Error() string {
	return fmt.Sprintf("rules: rule %q: condition does not compile: %s", e.Rule, e.Msg)
}

// Unwrap returns ErrInvalid.
func (e *CompileError) Unwrap() error { return ErrInvalid }

var namePattern = regexp.MustCompile(`^[a-z0-9_-]{1,64}$`)

// Validate checks a rule's name and action, not its condition (Compile does).
// A webhook's URL and secret are checked; kinds beyond the three built in
// are checked by the engine that knows them.
func (r *Rule) Validate() error {
	if !namePattern.MatchString(r.Name) {
		return fmt.Errorf("%w: name %.80q: want 1 to %d characters of a-z, 0-9, _ and -", ErrInvalid, r.Name, MaxNameLen)
	}
	if r.Action.Topic != "" && (r.Action.Kind == KindWebhook || r.Action.Kind == KindLog || r.Action.Kind == KindEvent) {
		return fmt.Errorf("%w: rule %q: topic belongs to mqtt actions, not %.40q", ErrInvalid, r.Name, r.Action.Kind)
	}
	if r.Action.Kind != KindWebhook {
		if r.Action.URL != "" || r.Action.Secret != "" {
			return fmt.Errorf("%w: rule %q: url and secret belong to webhook actions, not %.40q", ErrInvalid, r.Name, r.Action.Kind)
		}
		if r.Action.Kind == "" {
			return fmt.Errorf("%w: rule %q: no action kind", ErrInvalid, r.Name)
		}
		return nil
	}
	if len(r.Action.URL) > MaxURLLen {
		return fmt.Errorf("%w: rule %q: webhook url longer than %d bytes", ErrInvalid, r.Name, MaxURLLen)
	}
	u, err := url.Parse(r.Action.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%w: rule %q: webhook url %.80q: want an absolute http or https url", ErrInvalid, r.Name, r.Action.URL)
	}
	if len(r.Action.Secret) < 16 {
		return fmt.Errorf("%w: rule %q: webhook secret shorter than 16 bytes", ErrInvalid, r.Name)
	}
	return nil
}

// env is the CEL environment of every condition. Building one costs
// milliseconds, so it is built once.
var env = sync.OnceValues(func() (*cel.Env, error) {
	return cel.NewEnv(
		cel.Variable("id", cel.StringType),
		cel.Variable("issuer", cel.StringType),
		cel.Variable("seq", cel.UintType),
		cel.Variable("timestamp", cel.TimestampType),
		cel.Variable("confirmed_at", cel.TimestampType),
		cel.Variable("position", cel.UintType),
		cel.Variable("confirmation", cel.UintType),
		cel.Variable("tags", cel.ListType(cel.StringType)),
		cel.Variable("device", cel.StringType),
		cel.Variable("payload", cel.DynType),
		cel.Variable("payload_raw", cel.BytesType),
		cel.CrossTypeNumericComparisons(true),
		cel.ParserExpressionSizeLimit(MaxConditionLen),
		cel.ParserRecursionLimit(maxNesting),
	)
})

// A program is a compiled condition.
type program struct {
	prg cel.Program
}

// Compile validates r and compiles its condition. A condition that does not
// compile is refused with a *CompileError.
func Compile(r Rule) (*Compiled, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	p, err := compileCondition(r.Name, r.Condition)
	if err != nil {
		return nil, err
	}
	return &Compiled{Rule: r, prog: p}, nil
}

// Compiled is a rule whose condition compiled. It is safe for concurrent
// use.
type Compiled struct {
	Rule Rule
	prog program
}

func compileCondition(name, cond string) (program, error) {
	if len(cond) > MaxConditionLen {
		return program{}, &CompileError{Rule: name, Msg: fmt.Sprintf("longer than %d bytes", MaxConditionLen)}
	}
	e, err := env()
	if err != nil {
		return program{}, fmt.Errorf("rules: building the CEL environment: %w", err)
	}
	ast, iss := e.Compile(cond)
	if iss.Err() != nil {
		return program{}, &CompileError{Rule: name, Msg: iss.Err().Error()}
	}
	if !ast.OutputType().IsExactType(types.BoolType) {
		return program{}, &CompileError{Rule: name, Msg: fmt.Sprintf("condition is of type %s, want bool", ast.OutputType())}
	}
	opts := []cel.ProgramOption{cel.EvalOptions(cel.OptOptimize)}
	if est, err := e.EstimateCost(ast, sizes{}); err != nil || est.Max > CostLimit {
		// The condition may cost more than the limit on some message:
		// count its cost as it runs. One that cannot is spared the
		// tracking, which doubles the cost of a simple condition.
		opts = append(opts, cel.CostLimit(CostLimit))
	}
	prg, err := e.Program(ast, opts...)
	if err != nil {
		return program{}, &CompileError{Rule: name, Msg: err.Error()}
	}
	return program{prg: prg}, nil
}

// sizes bounds the variables for CEL's static cost estimate: the tags by
// MaxTags and MaxTagLen, anything else of a message (a string, the
// payload, any list, map or string in it) by the largest payload.
type sizes struct{}

func (sizes) EstimateSize(n cost.AstNode) *cost.SizeEstimate {
	p := n.Path()
	if len(p) == 0 {
		return nil
	}
	switch {
	case p[0] == "tags" && len(p) == 1:
		return &cost.SizeEstimate{Max: MaxTags}
	case p[0] == "tags":
		return &cost.SizeEstimate{Max: MaxTagLen}
	}
	return &cost.SizeEstimate{Max: dag.MaxPayload}
}

func (sizes) EstimateCallCost(string, string, *cost.AstNode, []cost.AstNode) *cost.CallEstimate {
	return nil
}

// match evaluates the condition on v: whether it holds, or the evaluation
// error.
func (p program) match(v *vars) (bool, error) {
	out, _, err := p.prg.Eval(v)
	if err != nil {
		return false, err
	}
	return out == types.True, nil
}
