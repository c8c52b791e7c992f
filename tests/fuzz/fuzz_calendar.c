/*  =========================================================================
    fuzz_calendar - libFuzzer target: the calendar parser (sf_calendar)

    Each input is one OnCalendar expression (up to its first NUL). What
    parses must print a normalized form that parses again to itself (what
    `snapfleet schedule list` shows is what the scheduler runs), and its
    next elapses must be -1 or strictly increasing and after the base.
    =========================================================================
*/
#include "sf_core.h"
#include "sf_calendar.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;               //  Schedules are short; the admin caps them lower
    char *expr = (char *) malloc (size + 1);
    assert (expr);
    memcpy (expr, data, size);
    expr [size] = 0;
    sf_err_t err = SF_ERR_INIT;
    sf_calendar_t *calendar = sf_calendar_parse (expr, &err);
    if (calendar) {
        const char *normalized = sf_calendar_normalized (calendar);
        assert (normalized && *normalized);
        sf_calendar_t *again = sf_calendar_parse (normalized, &err);
        if (!again)
            fprintf (stderr, "'%s' normalizes to '%s', which does not parse: %s\n",
                     expr, normalized, err.text);
        assert (again);
        if (strcmp (sf_calendar_normalized (again), normalized))
            fprintf (stderr, "'%s' normalizes to '%s', then to '%s'\n", expr, normalized,
                     sf_calendar_normalized (again));
        assert (streq (sf_calendar_normalized (again), normalized));
        //  From two fixed bases (2026-12-07 and the leap day 2028-02-29)
        static const int64_t bases [] = { 1796601600, 1835395199 };
        for (size_t b = 0; b < sizeof (bases) / sizeof (bases [0]); b++) {
            int64_t after = bases [b];
            for (int i = 0; i < 3; i++) {
                int64_t next = sf_calendar_next (calendar, after);
                if (next == -1)
                    break;
                assert (next > after);
                assert (sf_calendar_next (again, after) == next);
                after = next;
            }
        }
        sf_calendar_destroy (&again);
        sf_calendar_destroy (&calendar);
    }
    else {
        assert (err.code == SF_EINVAL && *err.text);
        assert (calendar == NULL);
    }
    free (expr);
    return 0;
}
