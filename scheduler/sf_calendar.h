/*  =========================================================================
    sf_calendar - systemd OnCalendar expressions (systemd.time(7), "CALENDAR
    EVENTS"): parse, normalize, next elapse

    Schedules are written in the syntax operators already know from systemd
    timers and Proxmox: "Mon..Fri *-*-* 22:00", "daily", "*-*~01 03:00 UTC".
    The parser accepts what systemd 252 accepts and nothing more, prints the
    same normalized form as `systemd-analyze calendar`, and computes the same
    elapses; tests/data/calendar-cases.txt holds golden cases taken from the
    real systemd-analyze (tests/tools/gen-calendar-cases.sh).

    Supported: weekday lists and ranges; year-month-day with '*', lists,
    ranges 'a..b', repetitions 'a/n', '~' (days counted from the end of the
    month); hour:minute[:second] likewise, seconds with up to 6 decimals;
    omitted date or time; '@EPOCH'; the shorthands minutely, hourly, daily,
    weekly, monthly, yearly/annually, quarterly, semiannually; a ' UTC'
    suffix, the local zone's abbreviation, or a zoneinfo name such as
    'Europe/Berlin'. Without a zone the expression is in local time (TZ).
    =========================================================================
*/
#ifndef SF_CALENDAR_H_INCLUDED
#define SF_CALENDAR_H_INCLUDED

typedef struct _sf_calendar_t sf_calendar_t;

//  Parse expr. Returns a new calendar (caller owns, destroy it), or NULL
//  with err set (SF_EINVAL, the message names the bad part) if systemd
//  would refuse the expression.
sf_calendar_t *
    sf_calendar_parse (const char *expr, sf_err_t *err);

//  Destroy the calendar. Tolerates NULL; nullifies *self_p.
void
    sf_calendar_destroy (sf_calendar_t **self_p);

//  The normalized form, exactly as `systemd-analyze calendar` prints it
//  ("Normalized form:"), e.g. "Mon..Fri *-*-* 09:00:00". Valid while the
//  calendar lives.
const char *
    sf_calendar_normalized (sf_calendar_t *self);

//  The first elapse whose whole second is strictly after `after` (epoch
//  seconds), as epoch seconds; -1 if there is none (a year in the past, a
//  date that does not exist, beyond 2199). An expression with an explicit
//  zone name switches TZ for the duration of the call (not thread-safe:
//  call it from one thread only, as the scheduler does).
int64_t
    sf_calendar_next (sf_calendar_t *self, int64_t after);

//  Self test of this class
void
    sf_calendar_test (bool verbose);

#endif
