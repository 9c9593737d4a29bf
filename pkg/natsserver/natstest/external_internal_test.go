package natstest

import (
	"net"
	"strings"
	"testing"
)

// A server whose port another server took first is not taken for ready
// because that other one greets on the port: it is seen to exit, with its
// own log, so that the caller can pick another port.
func TestStartIsNotFooledByAnotherServerOnItsPort(t *testing.T) {
	t.Parallel()
	binary := requireBinary(t)
	intruder, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { intruder.Close() })
	go func() {
		for {
			conn, err := intruder.Accept()
			if err != nil {
				return
			}
			// What another test's NATS server says to every client.
			conn.Write([]byte(`INFO {"server_id":"X","server_name":"another-test","version":"2.9.10"}` + "\r\n"))
			conn.Close()
		}
	}()
	dir := t.TempDir()
	e := &External{tb: t, binary: binary, storeDir: dir, port: intruder.Addr().(*net.TCPAddr).Port, logs: &lockedBuffer{}, name: storeName(dir)}
	err = e.start("127.0.0.1")
	if err == nil {
		e.Shutdown()
		t.Fatal("start took another server's greeting on the port for its own")
	}
	if !strings.Contains(err.Error(), "address already in use") {
		t.Errorf("start's error does not say the address was in use: %v", err)
	}
}
