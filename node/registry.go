package node

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/storage"
)

// The device registry: the devices the node's operator knows, with a name,
// tags, an owner and a state. It is edge policy (DESIGN.md): the edge
// refuses a revoked device's submissions with ErrRevoked, and in closed
// mode (Config.DevicesClosed) every device not registered; gossip never
// consults it. It lives in the store's state buckets (storage.StateTx),
// and in memory, where the edge reads it; every change is written and
// committed first, then published, so that what the API acknowledged
// survives a crash and what the edge sees is durable. docs/OPERATING.md
// says how it combines with the allowlist.

// DeviceState is a registered device's standing at the edge.
type DeviceState uint8

// The states of a registered device.
const (
	DeviceAllowed DeviceState = 1 // it may submit
	DeviceRevoked DeviceState = 2 // its submissions are refused with ErrRevoked
)

// String returns "allowed" or "revoked".
func (s DeviceState) String() string {
	switch s {
	case DeviceAllowed:
		return "allowed"
	case DeviceRevoked:
		return "revoked"
	}
	return fmt.Sprintf("DeviceState(%d)", uint8(s))
}

// ParseDeviceState parses "allowed" or "revoked".
func ParseDeviceState(s string) (DeviceState, error) {
	switch s {
	case "allowed":
		return DeviceAllowed, nil
	case "revoked":
		return DeviceRevoked, nil
	}
	return 0, &DeviceError{Field: "state", Reason: fmt.Sprintf("%q: want allowed or revoked", s)}
}

// Device is a registered device. Tags are sorted and distinct.
type Device struct {
	Key              dag.PublicKey
	Name             string
	Tags             []string
	Owner            string
	State            DeviceState
	Created, Updated time.Time
}

// HasTag reports whether d carries tag.
func (d *Device) HasTag(tag string) bool {
	_, ok := slices.BinarySearch(d.Tags, tag)
	return ok
}

// The limits on a device's fields (docs/API.md, "Devices").
const (
	MaxDeviceName  = 64 // bytes of a name
	MaxDeviceOwner = 64 // bytes of an owner
	MaxDeviceTags  = 16 // tags of a device
	MaxTagLen      = 32 // bytes of a tag
	maxWho         = 64 // bytes of who made a change
)

// Errors of the registry. The api package maps each to a stable code.
var (
	// ErrInvalidDevice: a field of a device or of a change is not
	// acceptable; the error is a *DeviceError that says which and why.
	ErrInvalidDevice = errors.New("node: invalid device")
	ErrDeviceExists  = errors.New("node: device already registered")
	ErrUnknownDevice = errors.New("node: no such device")
	// ErrRegistryFull: the registry holds Config.MaxDevices devices.
	ErrRegistryFull = errors.New("node: device registry full")
	// ErrRevoked: the device is revoked in the registry; the edge refuses
	// its submissions.
	ErrRevoked = errors.New("node: device revoked")
)

// DeviceError says which field of a device is not acceptable. It wraps
// ErrInvalidDevice.
type DeviceError struct {
	Field  string // "name", "owner", "tags", "state", "who"
	Reason string
}

func (e *DeviceError) Error() string { return "node: invalid device " + e.Field + ": " + e.Reason }

// Unwrap returns ErrInvalidDevice.
func (e *DeviceError) Unwrap() error { return ErrInvalidDevice }

// checkText accepts valid UTF-8 of at most max bytes with no control
// characters: a name, an owner, who made a change.
func checkText(field, s string, max int) error {
	if len(s) > max {
		return &DeviceError{field, fmt.Sprintf("%d bytes, at most %d", len(s), max)}
	}
	if !utf8.ValidString(s) {
		return &DeviceError{field, "not valid UTF-8"}
	}
	if i := strings.IndexFunc(s, unicode.IsControl); i >= 0 {
		return &DeviceError{field, fmt.Sprintf("a control character at byte %d", i)}
	}
	return nil
}

// CheckTag accepts a tag: 1 to MaxTagLen bytes of a-z, 0-9, '.', '_', ':'
// and '-', beginning with a letter or a digit.
func CheckTag(tag string) error {
	if tag == "" || len(tag) > MaxTagLen {
		return &DeviceError{"tags", fmt.Sprintf("%q: want 1 to %d characters", tag, MaxTagLen)}
	}
	for i := 0; i < len(tag); i++ {
		c := tag[i]
		alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || !strings.ContainsRune("._:-", rune(c))) {
			return &DeviceError{"tags", fmt.Sprintf("%q: want a-z, 0-9 and . _ : - (not first)", tag)}
		}
	}
	return nil
}

// normTags checks tags and returns them sorted and distinct.
func normTags(tags []string) ([]string, error) {
	out := slices.Clone(tags)
	for _, t := range out {
		if err := CheckTag(t); err != nil {
			return nil, err
		}
	}
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) > MaxDeviceTags {
		return nil, &DeviceError{"tags", fmt.Sprintf("%d tags, at most %d", len(out), MaxDeviceTags)}
	}
	return out, nil
}

// check validates d's fields and sorts its tags.
func (d *Device) check() error {
	if err := checkText("name", d.Name, MaxDeviceName); err != nil {
		return err
	}
	if err := checkText("owner", d.Owner, MaxDeviceOwner); err != nil {
		return err
	}
	if d.State != DeviceAllowed && d.State != DeviceRevoked {
		return &DeviceError{"state", fmt.Sprintf("%d: want allowed or revoked", d.State)}
	}
	tags, err := normTags(d.Tags)
	d.Tags = tags
	return err
}

// DeviceEdit is a change to a registered device: each field that is set
// changes; the rest stay. Tags replaces the tags; AddTags and RemoveTags
// then add and remove some.
type DeviceEdit struct {
	Name, Owner         *string
	Tags                *[]string
	AddTags, RemoveTags []string
	State               DeviceState // 0: unchanged
}

// The operations of the change log.
const (
	OpAdd    = "add"
	OpTag    = "tag"
	OpUntag  = "untag"
	OpRename = "rename"
	OpOwner  = "owner"
	OpRevoke = "revoke"
	OpAllow  = "allow"
	OpRemove = "remove"
)

// DeviceChange is one entry of the registry's change log: Who did Op to
// the device Key at At. Detail is the new state for add, the tags added or
// removed (comma-separated) for tag and untag, the new name or owner for
// rename and owner, and empty otherwise. Seq numbers the changes from 1 in
// the order they were made.
type DeviceChange struct {
	Seq    uint64
	At     time.Time
	Who    string
	Op     string
	Key    dag.PublicKey
	Detail string
}

// SeedWho is who the change log names for the devices the allowlist adds.
const SeedWho = "(allow)"

// Registry defaults (Config.MaxDevices, Config.MaxDeviceChanges).
const (
	DefaultMaxDevices       = 1_000_000
	DefaultMaxDeviceChanges = 10_000
)

// The state buckets of the registry.
const (
	stateDevices = "devices"        // public key (32) -> encodeDevice
	stateChanges = "device-changes" // Seq (8) -> encodeChange
)

// registry is the device registry of a node: the store's record and the
// copy in memory the edge reads.
type registry struct {
	store      *storage.Store
	now        func() time.Time
	max        int
	maxChanges int
	closed     bool

	// wmu serializes the changes: each is committed, then published.
	wmu     sync.Mutex
	lastSeq uint64 // the newest change's Seq; guarded by wmu

	mu   sync.RWMutex // guards devs and tags
	devs map[dag.PublicKey]*Device
	tags map[string]map[dag.PublicKey]struct{}
}

// openRegistry reads the registry from store.
func openRegistry(store *storage.Store, cfg Config) (*registry, error) {
	r := &registry{store: store, now: cfg.Time, max: cfg.MaxDevices, maxChanges: cfg.MaxDeviceChanges,
		closed: cfg.DevicesClosed, devs: map[dag.PublicKey]*Device{}, tags: map[string]map[dag.PublicKey]struct{}{}}
	err := store.StateView(func(tx *storage.StateTx) error {
		err := tx.ForEach(stateDevices, nil, false, func(k, v []byte) (bool, error) {
			d, err := decodeDevice(k, v)
			if err != nil {
				return false, err
			}
			r.publish(d.Key, d)
			return true, nil
		})
		if err != nil {
			return err
		}
		return tx.ForEach(stateChanges, nil, true, func(k, v []byte) (bool, error) {
			c, err := decodeChange(k, v)
			r.lastSeq = c.Seq
			return false, err
		})
	})
	if err != nil {
		return nil, fmt.Errorf("node: device registry: %w", err)
	}
	return r, nil
}

// admit is the registry's part of the edge policy for issuer k.
func (r *registry) admit(k dag.PublicKey) error {
	r.mu.RLock()
	d, ok := r.devs[k]
	r.mu.RUnlock()
	switch {
	case ok && d.State == DeviceRevoked:
		return ErrRevoked
	case !ok && r.closed:
		return fmt.Errorf("%w: not in the device registry, which is closed", ErrNotAllowed)
	}
	return nil
}

// publish makes d the registry's record of k in memory (nil: none), for
// the edge and the readers. Call with wmu held (or before the node runs).
func (r *registry) publish(k dag.PublicKey, d *Device) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if old := r.devs[k]; old != nil {
		for _, t := range old.Tags {
			delete(r.tags[t], k)
			if len(r.tags[t]) == 0 {
				delete(r.tags, t)
			}
		}
	}
	if d == nil {
		delete(r.devs, k)
		return
	}
	r.devs[k] = d
	for _, t := range d.Tags {
		if r.tags[t] == nil {
			r.tags[t] = map[dag.PublicKey]struct{}{}
		}
		r.tags[t][k] = struct{}{}
	}
}

func (r *registry) get(k dag.PublicKey) (*Device, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	d, ok := r.devs[k]
	return d, ok
}

// commit writes d as k's record (nil: removes it) with the changes, in
// one transaction, trims the change log to maxChanges, and then
// publishes d. Call with wmu held.
func (r *registry) commit(k dag.PublicKey, d *Device, who string, at time.Time, changes [][2]string) error {
	if err := checkText("who", who, maxWho); err != nil {
		return err
	}
	seq := r.lastSeq
	err := r.store.StateUpdate(func(tx *storage.StateTx) error {
		var err error
		if d == nil {
			err = tx.Delete(stateDevices, k[:])
		} else {
			err = tx.Put(stateDevices, k[:], encodeDevice(d))
		}
		if err != nil {
			return err
		}
		for _, c := range changes {
			seq++
			ch := DeviceChange{Seq: seq, At: at, Who: who, Op: c[0], Key: k, Detail: c[1]}
			if err := tx.Put(stateChanges, seqKey(seq), encodeChange(&ch)); err != nil {
				return err
			}
		}
		return r.trim(tx, seq)
	})
	if err != nil {
		return registryErr(err)
	}
	r.lastSeq = seq
	r.publish(k, d)
	return nil
}

// trim deletes the changes older than the newest maxChanges.
func (r *registry) trim(tx *storage.StateTx, newest uint64) error {
	if newest <= uint64(r.maxChanges) {
		return nil
	}
	cut := newest - uint64(r.maxChanges) // the newest Seq to delete
	var old [][]byte
	err := tx.ForEach(stateChanges, nil, false, func(k, _ []byte) (bool, error) {
		if len(k) != 8 || bytes.Compare(k, seqKey(cut)) > 0 {
			return false, nil
		}
		old = append(old, bytes.Clone(k))
		return true, nil
	})
	for _, k := range old {
		if err == nil {
			err = tx.Delete(stateChanges, k)
		}
	}
	return err
}

// registryErr maps the store's errors to the node's.
func registryErr(err error) error {
	switch {
	case errors.Is(err, storage.ErrClosed):
		return fmt.Errorf("%w: %v", ErrShuttingDown, err)
	case errors.Is(err, storage.ErrFailed):
		return fmt.Errorf("%w: %v", ErrStorageUnavailable, err)
	}
	return err
}

// add registers d, made by who. A registered key is ErrDeviceExists.
func (r *registry) add(who string, d Device) (Device, error) {
	if d.State == 0 {
		d.State = DeviceAllowed
	}
	if err := d.check(); err != nil {
		return Device{}, err
	}
	r.wmu.Lock()
	defer r.wmu.Unlock()
	if _, ok := r.get(d.Key); ok {
		return Device{}, fmt.Errorf("%w: %s", ErrDeviceExists, d.Key)
	}
	if r.count() >= r.max {
		return Device{}, fmt.Errorf("%w: it holds %d devices, the most it takes", ErrRegistryFull, r.max)
	}
	now := r.now()
	d.Created, d.Updated = now, now
	if err := r.commit(d.Key, &d, who, now, [][2]string{{OpAdd, d.State.String()}}); err != nil {
		return Device{}, err
	}
	return d, nil
}

func (r *registry) count() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.devs)
}

// edit applies e to k's record, made by who, and logs one change for each
// field it changes; an edit that changes nothing is not logged.
func (r *registry) edit(who string, k dag.PublicKey, e DeviceEdit) (Device, error) {
	r.wmu.Lock()
	defer r.wmu.Unlock()
	old, ok := r.get(k)
	if !ok {
		return Device{}, fmt.Errorf("%w: %s", ErrUnknownDevice, k)
	}
	d, changes, err := old.apply(e)
	if err != nil || len(changes) == 0 {
		return *old, err
	}
	d.Updated = r.now()
	if err := r.commit(k, &d, who, d.Updated, changes); err != nil {
		return Device{}, err
	}
	return d, nil
}

// apply returns d with e applied and the changes it makes, as ops and
// details.
func (d *Device) apply(e DeviceEdit) (Device, [][2]string, error) {
	next := *d
	tags := d.Tags
	if e.Tags != nil {
		tags = *e.Tags
	}
	tags = append(slices.Clone(tags), e.AddTags...)
	tags = slices.DeleteFunc(tags, func(t string) bool { return slices.Contains(e.RemoveTags, t) })
	next.Tags = tags
	if e.Name != nil {
		next.Name = *e.Name
	}
	if e.Owner != nil {
		next.Owner = *e.Owner
	}
	if e.State != 0 {
		next.State = e.State
	}
	for _, t := range e.RemoveTags {
		if err := CheckTag(t); err != nil {
			return Device{}, nil, err
		}
	}
	if err := next.check(); err != nil {
		return Device{}, nil, err
	}
	var changes [][2]string
	added := slices.DeleteFunc(slices.Clone(next.Tags), d.HasTag)
	removed := slices.DeleteFunc(slices.Clone(d.Tags), next.HasTag)
	if len(added) > 0 {
		changes = append(changes, [2]string{OpTag, strings.Join(added, ",")})
	}
	if len(removed) > 0 {
		changes = append(changes, [2]string{OpUntag, strings.Join(removed, ",")})
	}
	if next.Name != d.Name {
		changes = append(changes, [2]string{OpRename, next.Name})
	}
	if next.Owner != d.Owner {
		changes = append(changes, [2]string{OpOwner, next.Owner})
	}
	if next.State != d.State {
		op := OpAllow
		if next.State == DeviceRevoked {
			op = OpRevoke
		}
		changes = append(changes, [2]string{op, ""})
	}
	return next, changes, nil
}

// remove deletes k's record, by who.
func (r *registry) remove(who string, k dag.PublicKey) error {
	r.wmu.Lock()
	defer r.wmu.Unlock()
	if _, ok := r.get(k); !ok {
		return fmt.Errorf("%w: %s", ErrUnknownDevice, k)
	}
	return r.commit(k, nil, who, r.now(), [][2]string{{OpRemove, ""}})
}

// seed registers as allowed the keys that are not registered: the
// allowlist's. It stops at the first error.
func (r *registry) seed(keys []dag.PublicKey) error {
	for _, k := range keys {
		_, err := r.add(SeedWho, Device{Key: k})
		if err != nil && !errors.Is(err, ErrDeviceExists) {
			return err
		}
	}
	return nil
}

// list returns up to limit devices with keys above after (all if nil),
// in key order, those with tag only if tag is not empty.
func (r *registry) list(after *dag.PublicKey, tag string, limit int) []Device {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var page []*Device // the smallest keys seen so far, sorted, at most limit
	consider := func(k dag.PublicKey) {
		if after != nil && bytes.Compare(k[:], after[:]) <= 0 {
			return
		}
		if len(page) == limit && bytes.Compare(k[:], page[limit-1].Key[:]) >= 0 {
			return
		}
		i, _ := slices.BinarySearchFunc(page, k, func(d *Device, k dag.PublicKey) int { return bytes.Compare(d.Key[:], k[:]) })
		page = slices.Insert(page, i, r.devs[k])
		if len(page) > limit {
			page = page[:limit]
		}
	}
	if tag != "" {
		for k := range r.tags[tag] {
			consider(k)
		}
	} else {
		for k := range r.devs {
			consider(k)
		}
	}
	out := make([]Device, len(page))
	for i, d := range page {
		out[i] = *d
	}
	return out
}

// byTag returns the keys of the devices with tag, in key order.
func (r *registry) byTag(tag string) []dag.PublicKey {
	r.mu.RLock()
	out := make([]dag.PublicKey, 0, len(r.tags[tag]))
	for k := range r.tags[tag] {
		out = append(out, k)
	}
	r.mu.RUnlock()
	slices.SortFunc(out, func(a, b dag.PublicKey) int { return bytes.Compare(a[:], b[:]) })
	return out
}

// changes returns up to limit changes with Seq below before (0: from the
// newest), newest first.
func (r *registry) changes(before uint64, limit int) ([]DeviceChange, error) {
	var from []byte
	if before > 0 {
		if before == 1 {
			return nil, nil
		}
		from = seqKey(before - 1)
	}
	var out []DeviceChange
	err := r.store.StateView(func(tx *storage.StateTx) error {
		return tx.ForEach(stateChanges, from, true, func(k, v []byte) (bool, error) {
			c, err := decodeChange(k, v)
			if err != nil {
				return false, err
			}
			out = append(out, c)
			return len(out) < limit, nil
		})
	})
	if err != nil {
		return nil, registryErr(err)
	}
	return out, nil
}

// Device returns the registered device with key k, if there is one. It
// reads memory only and is safe for concurrent use: the event feed and
// rules read a device's tags with it.
func (n *Node) Device(k dag.PublicKey) (Device, bool) {
	d, ok := n.reg.get(k)
	if !ok {
		return Device{}, false
	}
	return *d, true
}

// DevicesByTag returns the keys of the registered devices that carry tag,
// in key order. Safe for concurrent use.
func (n *Node) DevicesByTag(tag string) []dag.PublicKey { return n.reg.byTag(tag) }

// Devices returns up to limit (at least 1) registered devices whose keys
// are above after (from the first if nil), in key order; only those with
// tag if tag is not empty.
func (n *Node) Devices(after *dag.PublicKey, tag string, limit int) []Device {
	return n.reg.list(after, tag, max(limit, 1))
}

// AddDevice registers d, a change made by who (an API token's name). Its
// state is DeviceAllowed if not set; Created and Updated are set to now.
// It fails with a *DeviceError for a field out of bounds, ErrDeviceExists,
// ErrRegistryFull, or ErrStorageUnavailable when the store cannot commit.
// When it returns nil the device is durable and the edge applies it.
func (n *Node) AddDevice(who string, d Device) (Device, error) { return n.reg.add(who, d) }

// EditDevice changes the device k as e says, a change made by who, and
// returns it. It fails as AddDevice does, or with ErrUnknownDevice.
func (n *Node) EditDevice(who string, k dag.PublicKey, e DeviceEdit) (Device, error) {
	return n.reg.edit(who, k, e)
}

// RemoveDevice forgets the device k, a change made by who; it fails with
// ErrUnknownDevice if k is not registered.
func (n *Node) RemoveDevice(who string, k dag.PublicKey) error { return n.reg.remove(who, k) }

// DeviceChanges returns up to limit (at least 1) entries of the change
// log with Seq below before (0: from the newest), newest first. The log
// keeps the latest Config.MaxDeviceChanges.
func (n *Node) DeviceChanges(before uint64, limit int) ([]DeviceChange, error) {
	return n.reg.changes(before, max(limit, 1))
}

// openRegistry reads the device registry, seeds it with the allowlist and
// hands it to the edge.
func (n *Node) openRegistry() error {
	reg, err := openRegistry(n.store, n.cfg)
	if err != nil {
		return err
	}
	if err := reg.seed(n.cfg.Allowlist); err != nil {
		return fmt.Errorf("node: adding the allowlist to the device registry: %w", err)
	}
	n.reg, n.edge.reg = reg, reg
	return nil
}
