package memstore_test

import (
	"testing"
	"time"

	"github.com/ssh-burn/chat/store"
	"github.com/ssh-burn/chat/store/memstore"
	"github.com/ssh-burn/chat/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Harness{
		New:      func(_ *testing.T, ttl time.Duration) (store.Store, store.Store) { return memstore.New(ttl), nil },
		TTL:      10 * time.Minute,
		FakeTime: true,
		Residue: func(_ *testing.T, s store.Store, id store.RoomID) []string {
			if s.(*memstore.Store).HasRoom(id) {
				return []string{"rooms[" + id.String() + "]"}
			}
			return nil
		},
	})
}
