/*  =========================================================================
    sf-lifewatch - log a domain's libvirt lifecycle events with timestamps

    Usage: sf-lifewatch URI DOMAIN OUTFILE
           sf-lifewatch URI --all OUTFILE
           sf-lifewatch --now

    An independent witness for the tests: the worker reports how long it
    kept a guest paused (pause_ms, and wall-clock at_ms in its events);
    this tool records when libvirt itself saw the guest stop and resume, so
    a test can check the two agree (within 50 ms).

    Registers libvirt's default event loop, opens URI, looks DOMAIN up (name
    or UUID) and registers a VIR_DOMAIN_EVENT_ID_LIFECYCLE callback for it.
    Each event appends one line to OUTFILE, flushed at once:

        <realtime_ms> <EVENT> <DETAIL> mono_us=<monotonic_us>

    e.g. "1732492800123 SUSPENDED PAUSED mono_us=8123456789". With --all
    the callback is registered for every domain of the connection (also
    ones defined later) and each line ends with " dom=<domain name>", e.g.
    "1732492800123 SUSPENDED PAUSED mono_us=8123456789 dom=g1". EVENT is one of
    DEFINED UNDEFINED STARTED SUSPENDED RESUMED STOPPED SHUTDOWN PMSUSPENDED
    CRASHED (EVENT_<n> if unknown); DETAIL is libvirt's detail name (or its
    number). realtime_ms is the CLOCK_REALTIME time the client received the
    event, in ms since the epoch (the worker's at_ms use the same clock).

    Prints "READY state=<domain state>" (with --all: "READY domains=<n>")
    on stdout once the callback is registered, so a test can wait for it
    before acting. Runs until SIGTERM
    or SIGINT (exit 0). Exits 1 on errors or if the connection to libvirtd
    closes (after logging "<realtime_ms> CLOSED <reason>").

    --now prints the CLOCK_MONOTONIC time in ms (the clock of mono_us), so
    that a test can compare its own actions with the events on a clock
    that a step of the wall clock does not move.
    =========================================================================
*/

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

static volatile sig_atomic_t s_stop;
static bool s_closed;
static bool s_all;              //  --all: every domain, lines name it

static const char *s_events [] = {
    "DEFINED", "UNDEFINED", "STARTED", "SUSPENDED", "RESUMED", "STOPPED",
    "SHUTDOWN", "PMSUSPENDED", "CRASHED"
};
static const char *s_defined [] = { "ADDED", "UPDATED", "RENAMED", "FROM_SNAPSHOT" };
static const char *s_undefined [] = { "REMOVED", "RENAMED" };
static const char *s_started [] = {
    "BOOTED", "MIGRATED", "RESTORED", "FROM_SNAPSHOT", "WAKEUP"
};
static const char *s_suspended [] = {
    "PAUSED", "MIGRATED", "IOERROR", "WATCHDOG", "RESTORED", "FROM_SNAPSHOT",
    "API_ERROR", "POSTCOPY", "POSTCOPY_FAILED"
};
static const char *s_resumed [] = {
    "UNPAUSED", "MIGRATED", "FROM_SNAPSHOT", "POSTCOPY", "POSTCOPY_FAILED"
};
static const char *s_stopped [] = {
    "SHUTDOWN", "DESTROYED", "CRASHED", "MIGRATED", "SAVED", "FAILED",
    "FROM_SNAPSHOT"
};
static const char *s_shutdown [] = { "FINISHED", "GUEST", "HOST" };
static const char *s_states [] = {
    "nostate", "running", "blocked", "paused", "shutdown", "shutoff",
    "crashed", "pmsuspended"
};

#define COUNT(a) ((int) (sizeof (a) / sizeof ((a) [0])))

static void
s_on_signal (int signum)
{
    (void) signum;
    s_stop = 1;
}

static int64_t
s_clock_us (clockid_t clock)
{
    struct timespec ts;
    clock_gettime (clock, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static const char *
s_detail_name (int event, int detail, char *buf, size_t size)
{
    const char **table = NULL;
    int count = 0;
    switch (event) {
        case VIR_DOMAIN_EVENT_DEFINED:   table = s_defined;   count = COUNT (s_defined); break;
        case VIR_DOMAIN_EVENT_UNDEFINED: table = s_undefined; count = COUNT (s_undefined); break;
        case VIR_DOMAIN_EVENT_STARTED:   table = s_started;   count = COUNT (s_started); break;
        case VIR_DOMAIN_EVENT_SUSPENDED: table = s_suspended; count = COUNT (s_suspended); break;
        case VIR_DOMAIN_EVENT_RESUMED:   table = s_resumed;   count = COUNT (s_resumed); break;
        case VIR_DOMAIN_EVENT_STOPPED:   table = s_stopped;   count = COUNT (s_stopped); break;
        case VIR_DOMAIN_EVENT_SHUTDOWN:  table = s_shutdown;  count = COUNT (s_shutdown); break;
        default: break;
    }
    if (table && detail >= 0 && detail < count)
        return table [detail];
    snprintf (buf, size, "%d", detail);
    return buf;
}

static int
s_on_lifecycle (virConnectPtr conn, virDomainPtr dom, int event, int detail,
                void *opaque)
{
    (void) conn;
    FILE *out = opaque;
    int64_t real_us = s_clock_us (CLOCK_REALTIME);
    int64_t mono_us = s_clock_us (CLOCK_MONOTONIC);
    char ebuf [32], dbuf [32];
    const char *name = ebuf;
    if (event >= 0 && event < COUNT (s_events))
        name = s_events [event];
    else
        snprintf (ebuf, sizeof ebuf, "EVENT_%d", event);
    const char *dname = s_all ? virDomainGetName (dom) : NULL;
    fprintf (out, "%lld %s %s mono_us=%lld%s%s\n", (long long) (real_us / 1000),
             name, s_detail_name (event, detail, dbuf, sizeof dbuf),
             (long long) mono_us, dname ? " dom=" : "", dname ? dname : "");
    fflush (out);
    return 0;
}

static void
s_on_close (virConnectPtr conn, int reason, void *opaque)
{
    (void) conn;
    FILE *out = opaque;
    static const char *reasons [] = { "ERROR", "EOF", "KEEPALIVE", "CLIENT" };
    fprintf (out, "%lld CLOSED %s\n",
             (long long) (s_clock_us (CLOCK_REALTIME) / 1000),
             reason >= 0 && reason < COUNT (reasons) ? reasons [reason] : "?");
    fflush (out);
    s_closed = true;
    s_stop = 1;
}

//  Wakes the event loop regularly so a signal is noticed promptly
static void
s_on_tick (int timer, void *opaque)
{
    (void) timer;
    (void) opaque;
}

//  libvirt prints every error on stderr by default; we report our own
static void
s_quiet (void *opaque, virErrorPtr err)
{
    (void) opaque;
    (void) err;
}

static void
s_virt_error (const char *what)
{
    const virError *err = virGetLastError ();
    fprintf (stderr, "sf-lifewatch: %s: %s\n", what,
             err && err->message ? err->message : "unknown libvirt error");
}

int
main (int argc, char *argv [])
{
    if (argc == 2 && strcmp (argv [1], "--now") == 0) {
        printf ("%lld\n", (long long) (s_clock_us (CLOCK_MONOTONIC) / 1000));
        return 0;
    }
    if (argc != 4) {
        fprintf (stderr, "usage: sf-lifewatch URI DOMAIN|--all OUTFILE | --now\n");
        return 2;
    }
    const char *uri = argv [1], *domain = argv [2], *outfile = argv [3];
    s_all = strcmp (domain, "--all") == 0;

    struct sigaction sa;
    memset (&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigemptyset (&sa.sa_mask);
    sigaction (SIGTERM, &sa, NULL);
    sigaction (SIGINT, &sa, NULL);

    FILE *out = fopen (outfile, "a");
    if (!out) {
        fprintf (stderr, "sf-lifewatch: %s: %s\n", outfile, strerror (errno));
        return 1;
    }
    int rc = 1, cb = -1, timer = -1;
    virConnectPtr conn = NULL;
    virDomainPtr dom = NULL;
    virSetErrorFunc (NULL, s_quiet);
    if (virEventRegisterDefaultImpl () < 0) {
        s_virt_error ("virEventRegisterDefaultImpl");
        goto done;
    }
    if (!(conn = virConnectOpen (uri))) {
        s_virt_error (uri);
        goto done;
    }
    if (!s_all) {
        dom = virDomainLookupByName (conn, domain);
        if (!dom)
            dom = virDomainLookupByUUIDString (conn, domain);
        if (!dom) {
            fprintf (stderr, "sf-lifewatch: no domain '%s' on %s\n", domain, uri);
            goto done;
        }
    }
    if (virConnectRegisterCloseCallback (conn, s_on_close, out, NULL) < 0) {
        s_virt_error ("virConnectRegisterCloseCallback");
        goto done;
    }
    cb = virConnectDomainEventRegisterAny (conn, dom, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
                                           VIR_DOMAIN_EVENT_CALLBACK (s_on_lifecycle),
                                           out, NULL);
    if (cb < 0) {
        s_virt_error ("virConnectDomainEventRegisterAny");
        goto done;
    }
    if ((timer = virEventAddTimeout (100, s_on_tick, NULL, NULL)) < 0) {
        s_virt_error ("virEventAddTimeout");
        goto done;
    }
    if (s_all) {
        int count = virConnectNumOfDomains (conn) + virConnectNumOfDefinedDomains (conn);
        printf ("READY domains=%d\n", count);
    }
    else {
        int state = 0, reason = 0;
        if (virDomainGetState (dom, &state, &reason, 0) < 0)
            state = 0;
        printf ("READY state=%s\n",
                state >= 0 && state < COUNT (s_states) ? s_states [state] : "?");
    }
    fflush (stdout);

    while (!s_stop) {
        if (virEventRunDefaultImpl () < 0) {
            s_virt_error ("virEventRunDefaultImpl");
            goto done;
        }
    }
    rc = s_closed ? 1 : 0;

done:
    if (timer >= 0)
        virEventRemoveTimeout (timer);
    if (cb >= 0 && !s_closed)
        virConnectDomainEventDeregisterAny (conn, cb);
    if (conn && !s_closed)
        virConnectUnregisterCloseCallback (conn, s_on_close);
    if (dom)
        virDomainFree (dom);
    if (conn)
        virConnectClose (conn);
    fclose (out);
    return rc;
}
