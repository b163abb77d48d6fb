package store

// HasRoom reports whether m still holds anything of room id.
func (m *Memory) HasRoom(id RoomID) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.rooms[id]
	return ok
}

// RoomKeys returns the Redis key names and channel of room id.
func RoomKeys(id RoomID) ([]string, string) {
	secrets, err := deriveRoomSecrets(id)
	if err != nil {
		panic(err)
	}
	return roomKeys(secrets.tag)
}
