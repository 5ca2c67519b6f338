package profilesink

import (
	"compress/gzip"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"go.opentelemetry.io/collector/pdata/pprofile/pprofileotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// These check what the Collector test cannot see: headers on the wire and
// partial successes.

func partialSuccess(rejected int64) pprofileotlp.ExportResponse {
	resp := pprofileotlp.NewExportResponse()
	resp.PartialSuccess().SetRejectedProfiles(rejected)
	resp.PartialSuccess().SetErrorMessage("too old")
	return resp
}

func TestOTLPHTTPWire(t *testing.T) {
	var got struct {
		path, ctype, enc, auth string
		profiles               int
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.path, got.ctype, got.enc, got.auth = r.URL.Path, r.Header.Get("Content-Type"), r.Header.Get("Content-Encoding"), r.Header.Get("Authorization")
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		body, _ := io.ReadAll(zr)
		req := pprofileotlp.NewExportRequest()
		if err := req.UnmarshalProto(body); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		got.profiles = req.Profiles().ProfileCount()
		b, _ := partialSuccess(1).MarshalProto()
		w.Write(b)
	}))
	defer srv.Close()
	o, err := NewOTLP(OTLPConfig{Endpoint: srv.URL, Protocol: ProtocolHTTPProtobuf, Headers: map[string]string{"Authorization": "Bearer t"}})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if err := o.Send(context.Background(), []Profile{testProfile(t, "api", testStart, 0)}); err != nil {
		t.Fatal(err)
	}
	if got.path != ProfilesPath || got.ctype != "application/x-protobuf" || got.enc != "gzip" || got.auth != "Bearer t" || got.profiles != 2 {
		t.Errorf("request %+v", got)
	}
	if o.Rejected() != 1 {
		t.Errorf("rejected %d, want the 1 the receiver reported", o.Rejected())
	}
}

type grpcReceiver struct {
	pprofileotlp.UnimplementedGRPCServer
	md       metadata.MD
	profiles int
}

func (g *grpcReceiver) Export(ctx context.Context, req pprofileotlp.ExportRequest) (pprofileotlp.ExportResponse, error) {
	g.md, _ = metadata.FromIncomingContext(ctx)
	g.profiles = req.Profiles().ProfileCount()
	return partialSuccess(2), nil
}

func TestOTLPGRPCWire(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	rcv := &grpcReceiver{}
	pprofileotlp.RegisterGRPCServer(gs, rcv)
	go gs.Serve(ln)
	defer gs.Stop()
	o, err := NewOTLP(OTLPConfig{Endpoint: ln.Addr().String(), Insecure: true, Headers: map[string]string{"X-Tenant": "a"}})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if err := o.Send(context.Background(), []Profile{testProfile(t, "api", testStart, 0)}); err != nil {
		t.Fatal(err)
	}
	if v := rcv.md.Get("x-tenant"); len(v) != 1 || v[0] != "a" || rcv.profiles != 2 {
		t.Errorf("metadata %v, %d profiles", rcv.md, rcv.profiles)
	}
	if o.Rejected() != 2 {
		t.Errorf("rejected %d, want 2", o.Rejected())
	}
}
