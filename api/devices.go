package api

import (
	"net/http"
	"strconv"

	"github.com/weftnet/weft/api/wire"
	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/node"
)

// The device registry under /api/v1/devices (docs/API.md, "Devices"):
// reads are open unless Options.ReadAuth; changes need a token.

// routeDevices adds the registry's endpoints to the mux.
func (s *Server) routeDevices() {
	s.mux.HandleFunc("GET "+wire.PathDevices, s.devices)
	s.mux.HandleFunc("POST "+wire.PathDevices, s.operator(s.addDevice))
	s.mux.HandleFunc("GET "+wire.PathDeviceChanges, s.deviceChanges)
	s.mux.HandleFunc("GET "+wire.PathDevices+"/{key}", s.device)
	s.mux.HandleFunc("PATCH "+wire.PathDevices+"/{key}", s.operator(s.editDevice))
	s.mux.HandleFunc("DELETE "+wire.PathDevices+"/{key}", s.operator(s.removeDevice))
}

// deviceJSON is d as the API shows it.
func deviceJSON(d node.Device) wire.Device {
	tags := d.Tags
	if tags == nil {
		tags = []string{}
	}
	return wire.Device{Key: d.Key.String(), Name: d.Name, Tags: tags, Owner: d.Owner, State: d.State.String(),
		Created: d.Created.UnixNano(), Updated: d.Updated.UnixNano()}
}

// pathKey reads the device key of the path, answering malformed if it is
// not one.
func pathKey(w http.ResponseWriter, r *http.Request) (dag.PublicKey, bool) {
	id, ok := parseID(w, r.PathValue("key"))
	return dag.PublicKey(id), ok
}

// readDeviceBody decodes the JSON body of r into v, answering what is
// wrong with it.
func readDeviceBody(w http.ResponseWriter, r *http.Request, v any) bool {
	return readJSONBody(w, r, wire.MaxDeviceBody, v)
}

// parseState reads a state of the API; "" is 0, unchanged.
func parseState(s string) (node.DeviceState, error) {
	if s == "" {
		return 0, nil
	}
	return node.ParseDeviceState(s)
}

func (s *Server) devices(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	pg, err := wire.ParsePage(q)
	if err != nil {
		writeError(w, wire.CodeBadRequest, err.Error())
		return
	}
	var after *dag.PublicKey
	if v := q.Get("after"); v != "" {
		k, err := wire.ParseKey("after", v)
		if err != nil {
			writeError(w, wire.CodeBadRequest, err.Error())
			return
		}
		after = &k
	}
	tag := q.Get("tag")
	if tag != "" {
		if err := node.CheckTag(tag); err != nil {
			writeError(w, wire.CodeBadRequest, err.Error())
			return
		}
	}
	devs := s.node.Devices(after, tag, pg.Limit+1)
	out := wire.DeviceList{Devices: []wire.Device{}}
	if len(devs) > pg.Limit {
		devs = devs[:pg.Limit]
		out.NextAfter = devs[pg.Limit-1].Key.String()
	}
	for _, d := range devs {
		out.Devices = append(out.Devices, deviceJSON(d))
	}
	wire.WriteJSON(w, http.StatusOK, out)
}

func (s *Server) device(w http.ResponseWriter, r *http.Request) {
	k, ok := pathKey(w, r)
	if !ok {
		return
	}
	d, ok := s.node.Device(k)
	if !ok {
		writeError(w, wire.CodeNotFound, "no device "+k.String()+" in the registry")
		return
	}
	wire.WriteJSON(w, http.StatusOK, deviceJSON(d))
}

func (s *Server) addDevice(w http.ResponseWriter, r *http.Request, who string) {
	var in wire.NewDevice
	if !readDeviceBody(w, r, &in) {
		return
	}
	k, err := wire.ParseKey("key", in.Key)
	if err != nil {
		writeError(w, wire.CodeBadRequest, err.Error())
		return
	}
	st, err := parseState(in.State)
	if err != nil {
		fail(w, err)
		return
	}
	d, err := s.node.AddDevice(who, node.Device{Key: k, Name: in.Name, Tags: in.Tags, Owner: in.Owner, State: st})
	if err != nil {
		fail(w, err)
		return
	}
	w.Header().Set("Location", wire.PathDevices+"/"+k.String())
	wire.WriteJSON(w, http.StatusCreated, deviceJSON(d))
}

func (s *Server) editDevice(w http.ResponseWriter, r *http.Request, who string) {
	k, ok := pathKey(w, r)
	if !ok {
		return
	}
	var in wire.DevicePatch
	if !readDeviceBody(w, r, &in) {
		return
	}
	st, err := parseState(in.State)
	if err != nil {
		fail(w, err)
		return
	}
	d, err := s.node.EditDevice(who, k, node.DeviceEdit{Name: in.Name, Owner: in.Owner, Tags: in.Tags,
		AddTags: in.AddTags, RemoveTags: in.RemoveTags, State: st})
	if err != nil {
		fail(w, err)
		return
	}
	wire.WriteJSON(w, http.StatusOK, deviceJSON(d))
}

func (s *Server) removeDevice(w http.ResponseWriter, r *http.Request, who string) {
	k, ok := pathKey(w, r)
	if !ok {
		return
	}
	if err := s.node.RemoveDevice(who, k); err != nil {
		fail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) deviceChanges(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	pg, err := wire.ParsePage(q)
	if err != nil {
		writeError(w, wire.CodeBadRequest, err.Error())
		return
	}
	var before uint64
	if v := q.Get("before"); v != "" {
		if before, err = strconv.ParseUint(v, 10, 64); err != nil || before == 0 {
			writeError(w, wire.CodeBadRequest, "before must be a positive integer")
			return
		}
	}
	cs, err := s.node.DeviceChanges(before, pg.Limit+1)
	if err != nil {
		fail(w, err)
		return
	}
	out := wire.DeviceChanges{Changes: []wire.DeviceChange{}}
	if len(cs) > pg.Limit {
		cs = cs[:pg.Limit]
		next := cs[pg.Limit-1].Seq
		out.NextBefore = &next
	}
	for _, c := range cs {
		out.Changes = append(out.Changes, wire.DeviceChange{Seq: c.Seq, At: c.At.UnixNano(), Who: c.Who,
			Op: c.Op, Key: c.Key.String(), Detail: c.Detail})
	}
	wire.WriteJSON(w, http.StatusOK, out)
}
