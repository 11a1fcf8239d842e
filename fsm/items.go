package fsm

// Tenant item counts: the exact number of distinct item IDs each tenant has
// posted. A batch is one log entry and is applied whole or not at all; an
// item posted again (a retry, or twice in one batch) counts once.

import (
	"fmt"
	"maps"
	"sort"
)

// MaxItemBatch is the hard cap on items in one batch, whatever the node's
// configured limit: it bounds the size of one log entry.
const MaxItemBatch = 1_000_000

// Item is one item of one tenant.
type Item struct {
	Tenant string
	ID     string
}

// ItemsAdded is the result of a batch.
type ItemsAdded struct {
	// Added counts items new to their tenant; Duplicates the rest.
	Added      int64
	Duplicates int64
	Index      uint64
}

// TenantCount is a tenant's item count as reads return it.
type TenantCount struct {
	Tenant string
	Count  int64
	// Index is the log index of the last batch that added to the tenant, 0
	// if none did.
	Index uint64
}

// tenant holds the IDs themselves, not hashes of them: the count must be
// exact, and a hash collision would silently lose an item.
type tenant struct {
	items map[string]struct{}
	index uint64
}

// TenantCount reads one tenant's count; a tenant never written counts 0.
func (s *State) TenantCount(name string) (*TenantCount, uint64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := &TenantCount{Tenant: name}
	if t := s.tenants[name]; t != nil {
		out.Count, out.Index = int64(len(t.items)), t.index
	}
	return out, s.applied
}

// ItemsAdd adds a batch of items.
type ItemsAdd struct {
	Items []Item
}

// Op implements Payload.
func (ItemsAdd) Op() Op { return OpItemsAdd }

// Validate implements Payload. One bad item refuses the whole batch.
func (p ItemsAdd) Validate() error {
	if len(p.Items) == 0 {
		return errorf(CodeBadRequest, "an item batch must not be empty")
	}
	if len(p.Items) > MaxItemBatch {
		return errorf(CodeTooLarge, "a batch may hold at most %d items, got %d", MaxItemBatch, len(p.Items))
	}
	for i, it := range p.Items {
		if err := CheckName("tenant", it.Tenant); err != nil {
			return errorf(CodeInvalidName, "item %d: %s", i, err.(*Error).Message)
		}
		if err := CheckItemID(it.ID); err != nil {
			return errorf(CodeInvalidName, "item %d: %s", i, err.(*Error).Message)
		}
	}
	return nil
}

func (p ItemsAdd) encode(e *encoder) {
	e.uvarint(uint64(len(p.Items)))
	for _, it := range p.Items {
		e.string(it.Tenant)
		e.string(it.ID)
	}
}

func decodeItemsAdd(d *decoder) Payload {
	p := ItemsAdd{Items: make([]Item, d.count(2))} // an item is two strings
	for i := range p.Items {
		p.Items[i] = Item{Tenant: d.string(), ID: d.string()}
	}
	return p
}

func (p ItemsAdd) apply(s *State, index uint64) (any, error) {
	out := &ItemsAdded{Index: index}
	for _, it := range p.Items {
		t := s.tenants[it.Tenant]
		if t == nil {
			t = &tenant{items: make(map[string]struct{})}
			s.tenants[it.Tenant] = t
		}
		if _, dup := t.items[it.ID]; dup {
			out.Duplicates++
			continue
		}
		t.items[it.ID] = struct{}{}
		t.index = index
		out.Added++
	}
	return out, nil
}

func init() {
	register(OpItemsAdd, "items.add", decodeItemsAdd)
	registerSection(section{name: "tenant", tag: recTenant, copy: copyTenants, read: readTenant})
	registerResult(valItems, encodeItemsAdded, decodeItemsAdded)
	registerRestorer(restoreTenants)
}

// Snapshot record and result tags of item counts. Persisted; do not
// renumber.
const (
	recTenant byte = 5
	valItems  byte = 6
)

// tenantChunk is how many item IDs one tenant record holds at most, so a
// tenant with millions of items does not make one huge record.
const tenantChunk = 4096

type tenantCopy struct {
	name  string
	index uint64
	items []string // sorted when written, outside the lock
}

// copyTenants is the tenants' part of a snapshot: their item IDs are
// collected under the lock but sorted only when written.
func copyTenants(s *State) func(*recordWriter) error {
	names := sortedKeys(s.tenants)
	ts := make([]tenantCopy, len(names))
	for i, name := range names {
		t := s.tenants[name]
		items := make([]string, 0, len(t.items))
		for id := range t.items {
			items = append(items, id)
		}
		ts[i] = tenantCopy{name: name, index: t.index, items: items}
	}
	return writeTenants(ts)
}

// writeTenants writes each tenant's items sorted, in records of at most
// tenantChunk IDs (one, empty, for a tenant without items).
func writeTenants(ts []tenantCopy) func(*recordWriter) error {
	return func(w *recordWriter) error {
		for _, t := range ts {
			sort.Strings(t.items)
			for first := 0; first == 0 || first < len(t.items); first += tenantChunk {
				chunk := t.items[first:min(first+tenantChunk, len(t.items))]
				w.rec.string(t.name)
				w.rec.uvarint(t.index)
				w.rec.uvarint(uint64(len(chunk)))
				for _, id := range chunk {
					w.rec.string(id)
				}
				if err := w.put(recTenant); err != nil {
					return err
				}
			}
		}
		return nil
	}
}

// readTenant reads one record's item IDs; a tenant spans several records
// when it holds many items, and each adds to it.
func readTenant(d *decoder) func(*State) error {
	name, index := d.string(), d.uvarint()
	ids := make([]string, d.count(1))
	for i := range ids {
		ids[i] = d.string()
	}
	return func(st *State) error {
		if err := CheckName("tenant", name); err != nil {
			return err
		}
		t := st.tenants[name]
		if t == nil {
			t = &tenant{items: make(map[string]struct{}, len(ids))}
			st.tenants[name] = t
		}
		t.index = index
		for _, id := range ids {
			if _, dup := t.items[id]; dup {
				return fmt.Errorf("tenant %s lists item %q twice", name, id)
			}
			t.items[id] = struct{}{}
		}
		return nil
	}
}

func encodeItemsAdded(e *encoder, r *ItemsAdded) {
	e.varint(r.Added)
	e.varint(r.Duplicates)
	e.uvarint(r.Index)
}

func decodeItemsAdded(d *decoder) *ItemsAdded {
	return &ItemsAdded{Added: d.varint(), Duplicates: d.varint(), Index: d.uvarint()}
}

// restoreTenants puts a user backup's tenants in place: a tenant's items
// come from the backup, and the restore's index marks those that changed.
// Merged, tenants only in s stay; forced, the backup's replace them all.
func restoreTenants(s, b *State, force bool, index uint64) {
	if force {
		for _, t := range b.tenants {
			t.index = index
		}
		s.tenants = b.tenants
		return
	}
	for name, bak := range b.tenants {
		if cur := s.tenants[name]; cur != nil && maps.Equal(cur.items, bak.items) {
			continue
		}
		bak.index = index
		s.tenants[name] = bak
	}
}
