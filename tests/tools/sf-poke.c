/*  =========================================================================
    sf-poke - throw malformed input at a snapfleet endpoint

    Usage: sf-poke tcp://127.0.0.1:PORT [ROUNDS]

    Sends, from a ZeroMQ DEALER: random frames of many sizes, multi-frame
    messages, an empty frame, a frame over the 4 MiB cap, a protobuf
    envelope of a future protocol version, a hello with no node name,
    and JSON-ish junk (invalid JSON, wrong types, an unknown command).
    Then it opens a raw TCP connection and writes bytes that are not ZMTP
    at all. It reads nothing back and exits 0 once everything is sent: the
    test then checks that the daemon still serves real requests.
    With SF_POKE_CERT (a key pair: PATH of 'snapfleet keygen') and
    SF_POKE_SERVER_KEY (the daemon's public key) in the environment, it
    speaks CURVE with that key, so that the garbage gets past the handshake
    of a scheduler that enrolled the key.
    =========================================================================
*/
#include <czmq.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>

static void
s_send_bytes (zsock_t *sock, const void *data, size_t size)
{
    zframe_t *frame = zframe_new (data, size);
    zframe_send (&frame, sock, 0);
}

static void
s_raw_tcp (const char *endpoint)
{
    //  Only tcp://A.B.C.D:PORT is supported here
    char host [64];
    int port;
    if (sscanf (endpoint, "tcp://%63[0-9.]:%d", host, &port) != 2)
        return;
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons ((uint16_t) port) };
    inet_pton (AF_INET, host, &addr.sin_addr);
    if (fd >= 0 && connect (fd, (struct sockaddr *) &addr, sizeof (addr)) == 0) {
        const char junk [] = "GET / HTTP/1.0\r\n\r\n\xff\x00\x01garbage\x7f\x7f";
        ssize_t rc = write (fd, junk, sizeof (junk));
        (void) rc;
        zclock_sleep (100);
    }
    if (fd >= 0)
        close (fd);
}

int
main (int argc, char *argv [])
{
    if (argc < 2) {
        fprintf (stderr, "usage: sf-poke ENDPOINT [ROUNDS]\n");
        return 2;
    }
    const char *endpoint = argv [1];
    int rounds = argc > 2? atoi (argv [2]): 200;
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    zsock_set_sndhwm (dealer, 100000);
    zsock_set_linger (dealer, 2000);
    const char *cert_path = getenv ("SF_POKE_CERT");
    const char *server_path = getenv ("SF_POKE_SERVER_KEY");
    if (cert_path && server_path) {
        //  zcert_load reads PATH_secret when there is one
        zcert_t *cert = zcert_load (cert_path);
        zcert_t *server = zcert_load (server_path);
        if (!cert || !server) {
            fprintf (stderr, "sf-poke: cannot read '%s' or '%s'\n", cert_path, server_path);
            return 1;
        }
        zcert_apply (cert, dealer);
        zsock_set_curve_serverkey (dealer, zcert_public_txt (server));
        zcert_destroy (&cert);
        zcert_destroy (&server);
    }
    if (zsock_connect (dealer, "%s", endpoint)) {
        fprintf (stderr, "sf-poke: cannot connect to '%s'\n", endpoint);
        return 1;
    }
    unsigned state = 12345;
    byte buf [2048];
    for (int round = 0; round < rounds; round++) {
        size_t size = (size_t) (round * 37 % (int) sizeof (buf));
        for (size_t i = 0; i < size; i++) {
            state = state * 1103515245u + 12345u;
            buf [i] = (byte) (state >> 16);
        }
        s_send_bytes (dealer, buf, size);
        if (round % 10 == 0) {          //  two frames where one is expected
            zframe_t *frame = zframe_new (buf, size / 2);
            zframe_send (&frame, dealer, ZFRAME_MORE);
            s_send_bytes (dealer, buf, size / 3);
        }
    }
    s_send_bytes (dealer, "", 0);
    //  Envelope{version=99, hello={}} and Envelope{version=1, hello={}}
    s_send_bytes (dealer, "\x08\x63\x52\x00", 4);
    s_send_bytes (dealer, "\x08\x01\x52\x00", 4);
    //  Envelope{version=1, job_result={job_id=""}} (field 17: tag 0x8a 0x01)
    s_send_bytes (dealer, "\x08\x01\x8a\x01\x00", 5);
    const char *jsons [] = {
        "{", "[]", "null", "{\"cmd\":42}", "{\"cmd\":\"nope\"}",
        "{\"cmd\":\"snapshot\"}", "{\"cmd\":\"snapshot\",\"instance\":[1,2]}",
        "{\"cmd\":\"job\",\"id\":{}}", "\"\\u0000\"",
    };
    for (size_t i = 0; i < sizeof (jsons) / sizeof (jsons [0]); i++)
        s_send_bytes (dealer, jsons [i], strlen (jsons [i]));
    //  Over the 4 MiB cap
    size_t big = 5 * 1024 * 1024;
    byte *huge = (byte *) zmalloc (big);
    memset (huge, 'x', big);
    s_send_bytes (dealer, huge, big);
    free (huge);
    zsock_destroy (&dealer);
    s_raw_tcp (endpoint);
    printf ("sf-poke: sent %d rounds of junk to %s\n", rounds, endpoint);
    return 0;
}
