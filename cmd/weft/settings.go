package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"
)

// Errors of the configuration of `weft node`; both come wrapped in a
// usageError.
var (
	errUnknownSetting = errors.New("unknown setting")
	errBadSetting     = errors.New("bad setting")
)

// settingError is an error of the configuration: its message says what
// and where; it wraps errUnknownSetting or errBadSetting.
type settingError struct {
	kind error
	msg  string
}

func (e *settingError) Error() string { return e.msg }
func (e *settingError) Unwrap() error { return e.kind }

func settingErr(kind error, format string, a ...any) error {
	return &settingError{kind, fmt.Sprintf(format, a...)}
}

// envPrefix starts the environment variable of every setting: data-dir is
// WEFT_DATA_DIR.
const envPrefix = "WEFT_"

// otherEnv are the WEFT_ variables of the project that are not settings:
// its tests' knobs. The environment check never refuses them, whatever
// setting they resemble (docs/OPERATING.md lists them).
var otherEnv = []string{
	"WEFT_API_TOKEN", // the operator's token for weft devices
	"WEFT_GEN_VECTORS",
	"WEFT_NETFAULT_NETNS",
	"WEFT_NETFAULT_SEED",
	"WEFT_SEED",
	"WEFT_STORAGE_CRASH_CHILD",
}

// envTypoDistance is how close (in edit distance) a WEFT_ variable that is
// no setting must be to a setting's variable to be taken for a typo of it.
const envTypoDistance = 2

// settings are the values of `weft node`'s settings, each from the first
// of: its flag, if given; its WEFT_ environment variable, if set; its key
// in the YAML file --config (or WEFT_CONFIG) names; its flag's default.
// The flags are the list of settings: the YAML keys are their names.
type settings struct {
	flags *pflag.FlagSet
	file  string       // the YAML file, "" if none
	yaml  *viper.Viper // the file's values; nil if none
	raw   []byte       // the file's bytes; nil if none
	// values are the settings given other than by a changed flag, parsed
	// by a flag of the same type: a list is comma-separated, as on the
	// command line.
	values *pflag.FlagSet
	source map[string]string // where each setting in values came from
}

// settingNames returns the names of the settings: every flag of f except
// config and help.
func settingNames(f *pflag.FlagSet) []string {
	var names []string
	f.VisitAll(func(fl *pflag.Flag) {
		if fl.Name != "config" && fl.Name != "help" {
			names = append(names, fl.Name)
		}
	})
	sort.Strings(names)
	return names
}

// envName is the environment variable of the setting name.
func envName(name string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// loadSettings reads the settings of the parsed flags f, the environment
// environ (as os.Environ returns it) and the YAML file. It refuses, with
// usage errors: a YAML key that names no setting, a WEFT_ variable that
// names none but is close to one (see checkEnv), and a value its
// setting's flag would not take.
func loadSettings(f *pflag.FlagSet, environ []string) (*settings, error) {
	env := envMap(environ)
	names := settingNames(f)
	if err := checkEnv(env, names); err != nil {
		return nil, err
	}
	s := &settings{flags: f, values: pflag.NewFlagSet("settings", pflag.ContinueOnError), source: map[string]string{}}
	s.file = f.Lookup("config").Value.String()
	if !f.Changed("config") {
		if p, ok := env[envPrefix+"CONFIG"]; ok {
			s.file = p
		}
	}
	if s.file != "" {
		if err := s.readFile(names); err != nil {
			return nil, err
		}
	}
	var errs []error
	for _, name := range names {
		if err := s.resolve(name, env); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, &usageError{err}
	}
	return s, nil
}

// readFile reads the YAML file and checks that its keys are settings.
func (s *settings) readFile(names []string) error {
	b, err := os.ReadFile(s.file)
	if err != nil {
		return usagef("reading %s: %w", s.file, err)
	}
	v := viper.New()
	v.SetConfigType("yaml")
	if err := v.ReadConfig(bytes.NewReader(b)); err != nil {
		return usagef("reading %s: %w", s.file, err)
	}
	var errs []error
	keys := make([]string, 0, len(v.AllSettings()))
	for k := range v.AllSettings() {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if slices.Contains(names, k) || slices.Contains(fileOnly, k) {
			continue
		}
		if k == "config" {
			errs = append(errs, settingErr(errUnknownSetting, "unknown setting %q in %s: a file cannot name another (use --config)", k, s.file))
			continue
		}
		near, _ := closest(k, names)
		errs = append(errs, settingErr(errUnknownSetting, "unknown setting %q in %s; did you mean %q?", k, s.file, near))
	}
	if err := errors.Join(errs...); err != nil {
		return &usageError{err}
	}
	s.yaml, s.raw = v, b
	return nil
}

// fileOnly are the keys of the YAML file that are not flags: structured
// settings, which only the file holds.
var fileOnly = []string{"rules"}

// fileSection decodes the file's key into v as YAML, refusing fields v
// does not have; it reports whether the file has the key.
func (s *settings) fileSection(key string, v any) (bool, error) {
	if s.raw == nil {
		return false, nil
	}
	var doc map[string]yaml.Node
	if err := yaml.Unmarshal(s.raw, &doc); err != nil {
		return false, fmt.Errorf("%s: %w", s.file, err)
	}
	n, ok := doc[key]
	if !ok {
		return false, nil
	}
	b, err := yaml.Marshal(&n)
	if err != nil {
		return true, fmt.Errorf("%s in %s: %w", key, s.file, err)
	}
	d := yaml.NewDecoder(bytes.NewReader(b))
	d.KnownFields(true)
	if err := d.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		return true, fmt.Errorf("%s in %s: %w", key, s.file, err)
	}
	return true, nil
}

// checkEnv refuses a WEFT_ variable that is no setting's (nor WEFT_CONFIG,
// nor one of otherEnv) but is within envTypoDistance edits of a setting's
// variable, or begins with one or is the beginning of one
// (WEFT_ALLOWLIST, WEFT_API): the likely typos. Other WEFT_ variables are
// left alone: they may be another program's.
func checkEnv(env map[string]string, names []string) error {
	known := map[string]bool{envPrefix + "CONFIG": true}
	var vars []string
	for _, n := range names {
		known[envName(n)] = true
		vars = append(vars, envName(n))
	}
	for _, o := range otherEnv {
		known[o] = true
	}
	var unknown []string
	for k := range env {
		if strings.HasPrefix(k, envPrefix) && !known[k] {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	var errs []error
	for _, k := range unknown {
		near, d := closest(k, vars)
		prefix := ""
		for _, v := range vars {
			if strings.HasPrefix(k, v) || strings.HasPrefix(v, k) {
				prefix = v
				break
			}
		}
		switch {
		case d <= envTypoDistance:
		case prefix != "":
			near = prefix
		default:
			continue
		}
		errs = append(errs, settingErr(errUnknownSetting, "unknown environment variable %s; did you mean %s?", k, near))
	}
	if err := errors.Join(errs...); err != nil {
		return &usageError{err}
	}
	return nil
}

// envMap turns environ's KEY=VALUE strings into a map.
func envMap(environ []string) map[string]string {
	m := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

// resolve finds the value of the setting name: a changed flag stays where
// it is; a value from the environment or the file is parsed into s.values
// by a flag of the same type.
func (s *settings) resolve(name string, env map[string]string) error {
	fl := s.flags.Lookup(name)
	if fl.Changed {
		return nil
	}
	var (
		raw    []string
		source string
	)
	if v, ok := env[envName(name)]; ok {
		raw, source = []string{v}, envName(name)
	} else if s.yaml != nil && s.yaml.InConfig(name) && s.yaml.Get(name) != nil { // "key:" alone is the default
		var err error
		source = fmt.Sprintf("%s in %s", name, s.file)
		if raw, err = yamlStrings(s.yaml.Get(name), fl.Value.Type() == "stringSlice"); err != nil {
			return settingErr(errBadSetting, "%s: %v", source, err)
		}
	} else {
		return nil
	}
	if err := defineLike(s.values, fl); err != nil {
		return err
	}
	if len(raw) == 0 { // an empty YAML list
		raw = []string{""}
	}
	for _, r := range raw {
		if err := s.values.Set(name, r); err != nil {
			return settingErr(errBadSetting, "%s=%q: want %s", source, r, typeName(fl.Value.Type()))
		}
	}
	s.source[name] = source
	return nil
}

// yamlStrings returns a YAML value as the strings a flag parses: a scalar
// as one, a list's elements (for a list setting) each as one.
func yamlStrings(v any, list bool) ([]string, error) {
	switch v := v.(type) {
	case []any:
		if !list {
			return nil, errors.New("a list, for a setting of one value")
		}
		out := make([]string, 0, len(v))
		for _, e := range v {
			s, err := yamlScalar(e)
			if err != nil {
				return nil, err
			}
			out = append(out, s)
		}
		return out, nil
	default:
		s, err := yamlScalar(v)
		if err != nil {
			return nil, err
		}
		return []string{s}, nil
	}
}

func yamlScalar(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return v, nil
	case bool, int, int64, uint64, float64:
		return fmt.Sprint(v), nil
	default:
		return "", fmt.Errorf("%T, want a single value", v)
	}
}

// defineLike defines in fs a flag of fl's name and type.
func defineLike(fs *pflag.FlagSet, fl *pflag.Flag) error {
	if fs.Lookup(fl.Name) != nil {
		return nil
	}
	switch t := fl.Value.Type(); t {
	case "string":
		fs.String(fl.Name, "", "")
	case "bool":
		fs.Bool(fl.Name, false, "")
	case "int":
		fs.Int(fl.Name, 0, "")
	case "float64":
		fs.Float64(fl.Name, 0, "")
	case "duration":
		fs.Duration(fl.Name, 0, "")
	case "stringSlice":
		fs.StringSlice(fl.Name, nil, "")
	default:
		return fmt.Errorf("setting %s: type %s has no parser", fl.Name, t)
	}
	return nil
}

// typeName says in words what a flag of type t takes.
func typeName(t string) string {
	switch t {
	case "bool":
		return "true or false"
	case "int":
		return "an integer"
	case "float64":
		return "a number"
	case "duration":
		return "a duration such as 500ms, 5s or 1m"
	case "stringSlice":
		return "a comma-separated list"
	default:
		return "a " + t
	}
}

// lookup returns the flag set that holds the value of setting name.
func (s *settings) lookup(name string) *pflag.FlagSet {
	if s.values.Lookup(name) != nil {
		return s.values
	}
	return s.flags
}

// The typed getters: resolve and the flag's parser have checked the type.

func (s *settings) str(name string) string {
	v, _ := s.lookup(name).GetString(name)
	return v
}

func (s *settings) boolean(name string) bool {
	v, _ := s.lookup(name).GetBool(name)
	return v
}

func (s *settings) integer(name string) int {
	v, _ := s.lookup(name).GetInt(name)
	return v
}

func (s *settings) float(name string) float64 {
	v, _ := s.lookup(name).GetFloat64(name)
	return v
}

func (s *settings) duration(name string) time.Duration {
	v, _ := s.lookup(name).GetDuration(name)
	return v
}

func (s *settings) list(name string) []string {
	v, _ := s.lookup(name).GetStringSlice(name)
	var out []string
	for _, e := range v {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}

// from says where the value of setting name came from, for messages.
func (s *settings) from(name string) string {
	if src, ok := s.source[name]; ok {
		return src
	}
	if s.flags.Changed(name) {
		return "--" + name
	}
	return "the default of " + name
}

// describe returns every setting's value as text, to tell what a reload
// changed.
func (s *settings) describe() map[string]string {
	m := map[string]string{}
	for _, name := range settingNames(s.flags) {
		m[name] = s.lookup(name).Lookup(name).Value.String()
	}
	return m
}

// closest returns the candidate nearest to name in edit distance, and the
// distance.
func closest(name string, candidates []string) (string, int) {
	best, bestD := "", -1
	for _, c := range candidates {
		if d := editDistance(name, c); bestD < 0 || d < bestD {
			best, bestD = c, d
		}
	}
	return best, bestD
}

// editDistance is the optimal string alignment distance between a and b:
// insertions, deletions, substitutions and transpositions of adjacent
// bytes count one each.
func editDistance(a, b string) int {
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
