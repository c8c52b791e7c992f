/*  =========================================================================
    sf_calendar - systemd OnCalendar expressions: parse, normalize, next

    An expression becomes six chains (year, month, day, hour, minute,
    second) plus a weekday mask. A chain is a sorted list of components
    "start[..stop][/repeat]"; an empty chain means '*'. Seconds are kept in
    microseconds because systemd accepts and prints fractions. The grammar,
    the normalization (two-digit years, sorting, dropping repeats that never
    fire) and the range checks follow systemd 252 so that what the operator
    reads back is what `systemd-analyze calendar` would print; the golden
    cases in tests/data/calendar-cases.txt keep us honest.

    The next elapse is searched field by field in wall-clock time (UTC,
    local time or the named zone), from the year down to the second.
    =========================================================================
*/
#include "sf_sched_classes.h"

#include <fcntl.h>
#include <limits.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define USEC            1000000
#define MIN_YEAR        1970
#define MAX_YEAR        2199
#define ALL_WEEKDAYS    127
#define MAX_COMPONENTS  241         //  systemd refuses longer lists
#define ZONEINFO        "/usr/share/zoneinfo"

enum { F_YEAR, F_MONTH, F_DAY, F_HOUR, F_MINUTE, F_SECOND, F_LAST };

static const struct {
    const char *name;
    int from, to;                   //  allowed values (seconds: microseconds)
    int width;                      //  zero padding when printed
} s_fields [F_LAST] = {
    { "year",   MIN_YEAR, MAX_YEAR,     4 },
    { "month",  1,        12,           2 },
    { "day",    1,        31,           2 },
    { "hour",   0,        23,           2 },
    { "minute", 0,        59,           2 },
    { "second", 0,        60 * USEC - 1, 2 },
};

typedef struct {
    int start;
    int stop;                       //  -1: no range
    int repeat;                     //  0: no repetition
} comp_t;

typedef struct {
    comp_t *items;                  //  Owned; NULL when size is 0
    size_t size;                    //  0 = '*', any value
} chain_t;

//  Structure of our class

struct _sf_calendar_t {
    chain_t chain [F_LAST];
    int weekdays;                   //  bit 0 = Monday; 0 = any day
    bool end_of_month;              //  day chain counts from the month's end
    bool utc;
    int dst;                        //  -1, or 0/1: local zone tzname [dst] given
    char *timezone;                 //  Owned; zoneinfo name or NULL
    char *normalized;               //  Owned
};

typedef struct {
    const char *expr;               //  the whole expression, for messages
    const char *p;                  //  cursor
    sf_err_t *err;
} parser_t;

static const char *s_day_names [] = {
    "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"
};

//  --------------------------------------------------------------------------
//  Errors: always "invalid calendar expression 'EXPR': WHAT"

static int
s_fail (parser_t *parser, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));

static int
s_fail (parser_t *parser, const char *format, ...)
{
    char what [160];
    va_list args;
    va_start (args, format);
    vsnprintf (what, sizeof what, format, args);
    va_end (args);
    return sf_err_set (parser->err, SF_EINVAL, "invalid calendar expression '%.60s%s': %s",
                       parser->expr, strlen (parser->expr) > 60? "...": "", what);
}

//  "unexpected 'rest'" at the cursor, or "unexpected end" there

static int
s_fail_here (parser_t *parser, const char *expected)
{
    if (*parser->p)
        return s_fail (parser, "%s, not '%.24s'", expected, parser->p);
    return s_fail (parser, "%s at the end", expected);
}

//  --------------------------------------------------------------------------
//  Chains

static void
s_chain_add (chain_t *chain, int start, int stop, int repeat)
{
    chain->items = (comp_t *) realloc (chain->items, (chain->size + 1) * sizeof (comp_t));
    assert (chain->items);
    chain->items [chain->size++] = (comp_t) { start, stop, repeat };
}

static void
s_chain_clear (chain_t *chain)
{
    free (chain->items);
    chain->items = NULL;
    chain->size = 0;
}

static int
s_comp_cmp (const void *a, const void *b)
{
    const comp_t *x = (const comp_t *) a, *y = (const comp_t *) b;
    if (x->start != y->start)
        return x->start < y->start? -1: 1;
    if (x->stop != y->stop)
        return x->stop < y->stop? -1: 1;
    if (x->repeat != y->repeat)
        return x->repeat < y->repeat? -1: 1;
    return 0;
}

//  Trim a range to a whole number of repeats, drop repeats that cannot
//  fire, sort and remove duplicates (systemd's normalization)

static void
s_chain_normalize (chain_t *chain)
{
    for (size_t index = 0; index < chain->size; index++) {
        comp_t *c = &chain->items [index];
        if (c->stop > c->start && c->repeat > 0)
            c->stop -= (c->stop - c->start) % c->repeat;
        if ((c->stop > c->start && c->repeat > 0 && c->start + c->repeat > c->stop)
        ||  c->start == c->stop) {
            c->repeat = 0;
            c->stop = -1;
        }
    }
    if (chain->size < 2)
        return;
    qsort (chain->items, chain->size, sizeof (comp_t), s_comp_cmp);
    size_t kept = 1;
    for (size_t index = 1; index < chain->size; index++)
        if (s_comp_cmp (&chain->items [index], &chain->items [kept - 1]))
            chain->items [kept++] = chain->items [index];
    chain->size = kept;
}

//  Print one component as systemd does (seconds: fractions with 6 digits)

static void
s_comp_print (FILE *out, const comp_t *c, int width, bool usec)
{
    int unit = usec? USEC: 1;
    fprintf (out, "%0*d", width, c->start / unit);
    if (c->start % unit > 0)
        fprintf (out, ".%06d", c->start % unit);
    if (c->stop > 0)
        fprintf (out, "..%0*d", width, c->stop / unit);
    if (c->stop % unit > 0)
        fprintf (out, ".%06d", c->stop % unit);
    if (c->repeat > 0 && !(c->stop > 0 && c->repeat == unit))
        fprintf (out, "/%d", c->repeat / unit);
    if (c->repeat % unit > 0)
        fprintf (out, ".%06d", c->repeat % unit);
}

static void
s_chain_print (FILE *out, const chain_t *chain, int field)
{
    bool usec = field == F_SECOND;
    bool star = chain->size == 0;
    for (size_t index = 0; usec && index < chain->size; index++) {
        const comp_t *c = &chain->items [index];
        if (c->start == 0 && c->stop < 0 && c->repeat == USEC)
            star = true;
    }
    if (star) {
        fputc ('*', out);
        return;
    }
    for (size_t index = 0; index < chain->size; index++) {
        if (index)
            fputc (',', out);
        s_comp_print (out, &chain->items [index], s_fields [field].width, usec);
    }
}

//  Check a normalized chain against the field's bounds. Returns the first
//  bad component (and why, and the upper bound it broke) or NULL. Days
//  counted from the month's end may go back at most 28 days (so that they
//  exist in February); systemd 252 lowers that bound by 3 more for each
//  further value of the list ("*-*~6,27" is refused, "*-*~6,25" is not),
//  and so do we.

static const comp_t *
s_chain_bad (const chain_t *chain, int field, bool end_of_month, const char **why, int *top)
{
    int from = s_fields [field].from, to = s_fields [field].to;
    for (size_t index = 0; index < chain->size; index++) {
        const comp_t *c = &chain->items [index];
        if (end_of_month)
            to -= 3;
        *top = to;
        *why = "out of range";
        if (c->start < from || c->start > to || (c->stop >= 0 && (c->stop < from || c->stop > to)))
            return c;
        *why = "is an empty range";
        if (c->stop >= 0 && c->start + c->repeat > c->stop)
            return c;
        *why = "repeats past the end of the range";
        if (c->repeat > to - from
        ||  (c->stop < 0 && (end_of_month? c->start - c->repeat < from: c->start + c->repeat > to)))
            return c;
    }
    return NULL;
}

//  --------------------------------------------------------------------------
//  Parsing

//  A decimal number; for seconds (usec) with an optional fraction

static int
s_parse_number (parser_t *parser, bool usec, int *value)
{
    const char *p = parser->p;
    if (!isdigit ((unsigned char) *p))
        return s_fail_here (parser, "expected a number");
    errno = 0;
    char *end;
    unsigned long number = strtoul (p, &end, 10);
    if (errno || number > INT_MAX || (usec && number > INT_MAX / USEC))
        return s_fail (parser, "number '%.*s' too large", (int) (end - p), p);
    if (usec) {
        number *= USEC;
        //  One '.' is a decimal point, ".." is a range
        if (end [0] == '.' && end [1] != '.') {
            end++;
            if (!isdigit ((unsigned char) *end)) {
                parser->p = end;
                return s_fail_here (parser, "expected decimals");
            }
            unsigned long fraction = 0;
            int digits = 0;
            for (; digits < 6 && isdigit ((unsigned char) *end); digits++)
                fraction = fraction * 10 + (unsigned long) (*end++ - '0');
            for (; digits < 6; digits++)
                fraction *= 10;
            if (*end >= '5' && *end <= '9')
                fraction++;                 //  rounded to the microsecond
            while (isdigit ((unsigned char) *end))
                end++;
            number += fraction;
            if (number > INT_MAX)
                return s_fail (parser, "number '%.*s' too large", (int) (end - p), p);
        }
    }
    parser->p = end;
    *value = (int) number;
    return 0;
}

//  One chain: '*', or components "start[..stop][/repeat]" separated by ','

static int
s_parse_chain (parser_t *parser, bool usec, chain_t *chain)
{
    if (*parser->p == '*') {
        parser->p++;
        if (usec)
            s_chain_add (chain, 0, -1, USEC);
        return 0;
    }
    while (true) {
        if (chain->size >= MAX_COMPONENTS)
            return s_fail (parser, "more than %d values in a list", MAX_COMPONENTS);
        const char *first = parser->p;
        int start, stop = -1, repeat = 0;
        if (s_parse_number (parser, usec, &start))
            return -1;
        if (parser->p [0] == '.' && parser->p [1] == '.') {
            parser->p += 2;
            if (s_parse_number (parser, usec, &stop))
                return -1;
            repeat = usec? USEC: 1;
        }
        if (*parser->p == '/') {
            parser->p++;
            if (s_parse_number (parser, usec, &repeat))
                return -1;
            if (repeat == 0)
                return s_fail (parser, "repetition '%.*s' is zero",
                               (int) (parser->p - first), first);
        }
        else
        if (usec && stop >= 0 && start + repeat > stop)
            return s_fail (parser, "range '%.*s' shorter than a second",
                           (int) (parser->p - first), first);
        if (!strchr (" ,-~:", *parser->p))      //  includes the end
            return s_fail_here (parser, "expected ',', '-', '~', ':' or ' '");
        s_chain_add (chain, start, stop, repeat);
        if (*parser->p != ',')
            return 0;
        parser->p++;
    }
}

static const struct {
    const char *name;
    int day;                        //  0 = Monday
} s_weekday_names [] = {
    { "monday", 0 }, { "mon", 0 }, { "tuesday", 1 }, { "tue", 1 },
    { "wednesday", 2 }, { "wed", 2 }, { "thursday", 3 }, { "thu", 3 },
    { "friday", 4 }, { "fri", 4 }, { "saturday", 5 }, { "sat", 5 },
    { "sunday", 6 }, { "sun", 6 },
};

static int
s_weekday_at (const char *p, size_t *length)
{
    for (size_t index = 0; index < sizeof s_weekday_names / sizeof s_weekday_names [0]; index++) {
        size_t size = strlen (s_weekday_names [index].name);
        if (strncasecmp (p, s_weekday_names [index].name, size) == 0) {
            *length = size;
            return s_weekday_names [index].day;
        }
    }
    return -1;
}

//  Leading weekdays: "Mon", "Mon,Wed", "Mon..Fri" (or legacy "Mon-Fri")

static int
s_parse_weekdays (parser_t *parser, sf_calendar_t *self)
{
    int range_from = -1;
    bool first = true;
    while (true) {
        size_t length;
        const char *name = parser->p;
        int day = s_weekday_at (name, &length);
        if (day < 0) {
            if (first)
                return 0;           //  no weekdays: the date follows
            return s_fail_here (parser, "expected a weekday");
        }
        if (!strchr ("-.,  ", name [length]))
            return s_fail (parser, "bad weekday '%.*s'", (int) length + 1, name);
        self->weekdays |= 1 << day;
        if (range_from >= 0) {
            if (range_from > day)
                return s_fail (parser, "weekday range ending in '%.*s' goes backwards",
                               (int) length, name);
            for (int other = range_from + 1; other < day; other++)
                self->weekdays |= 1 << other;
        }
        parser->p += length;
        if (*parser->p == '\0')
            return 0;
        if (*parser->p == ' ') {
            parser->p += strspn (parser->p, " ");
            return 0;
        }
        if (*parser->p == '.') {
            if (range_from >= 0 || parser->p [1] != '.')
                return s_fail_here (parser, "bad weekday range");
            range_from = day;
            parser->p += 2;
        }
        else
        if (*parser->p == '-') {
            if (range_from >= 0)
                return s_fail_here (parser, "bad weekday range");
            range_from = day;
            parser->p++;
        }
        else {                      //  ','
            range_from = -1;
            parser->p++;
        }
        //  A trailing comma is fine, an open range is not
        if (*parser->p == '\0' || *parser->p == ' ') {
            if (range_from >= 0)
                return s_fail (parser, "weekday range without an end");
            parser->p += strspn (parser->p, " ");
            return 0;
        }
        first = false;
    }
}

//  '@EPOCH': one moment, in UTC. The number is read by strtoul as systemd
//  reads it (so "@ 5" and "@+5" are accepted too)

static int
s_parse_epoch (parser_t *parser, sf_calendar_t *self)
{
    parser->p++;
    errno = 0;
    char *end;
    unsigned long value = strtoul (parser->p, &end, 10);
    if (end == parser->p)
        return s_fail_here (parser, "expected seconds after '@'");
    time_t when = (time_t) value;
    struct tm tm;
    if (errno || (unsigned long) when != value || !gmtime_r (&when, &tm)
    ||  tm.tm_year > INT_MAX - 1900)
        return s_fail (parser, "timestamp '@%.*s' out of range", (int) (end - parser->p), parser->p);
    parser->p = end;
    s_chain_add (&self->chain [F_YEAR], tm.tm_year + 1900, -1, 0);
    s_chain_add (&self->chain [F_MONTH], tm.tm_mon + 1, -1, 0);
    s_chain_add (&self->chain [F_DAY], tm.tm_mday, -1, 0);
    s_chain_add (&self->chain [F_HOUR], tm.tm_hour, -1, 0);
    s_chain_add (&self->chain [F_MINUTE], tm.tm_min, -1, 0);
    s_chain_add (&self->chain [F_SECOND], tm.tm_sec * USEC, -1, 0);
    self->utc = true;
    return 0;
}

//  The date: "y-m-d", "m-d" ('~' instead of the last '-': from the month's
//  end). Leaves the cursor where it was when there is no date, only a time.

static int
s_parse_date (parser_t *parser, sf_calendar_t *self)
{
    chain_t part [3] = { { NULL, 0 } };
    const char *begin = parser->p;
    int rc = -1;
    int parts = 0;
    if (*parser->p == '\0')
        return 0;
    while (true) {
        if (s_parse_chain (parser, false, &part [parts++]))
            goto cleanup;
        char next = *parser->p;
        if (parts == 1 && (next == '\0' || next == ':')) {
            parser->p = begin;      //  no date: parse it again as the time
            rc = 0;
            goto cleanup;
        }
        if (parts > 1 && (next == '\0' || next == ' '))
            break;
        if (parts == 3 || (parts == 2 && self->end_of_month)) {
            s_fail_here (parser, "expected the end of the date");
            goto cleanup;
        }
        if (next == '~')
            self->end_of_month = true;
        else
        if (next != '-') {
            s_fail_here (parser, "expected '-' or '~' in the date");
            goto cleanup;
        }
        parser->p++;
    }
    parser->p += strspn (parser->p, " ");
    int field = parts == 3? F_YEAR: F_MONTH;
    for (int index = 0; index < parts; index++, field++) {
        self->chain [field] = part [index];
        part [index] = (chain_t) { NULL, 0 };
    }
    rc = 0;
 cleanup:
    for (int index = 0; index < 3; index++)
        s_chain_clear (&part [index]);
    return rc;
}

//  The time: "h:m[:s]"; nothing at all is 00:00:00

static int
s_parse_time (parser_t *parser, sf_calendar_t *self)
{
    if (*parser->p == '\0') {
        s_chain_add (&self->chain [F_HOUR], 0, -1, 0);
        s_chain_add (&self->chain [F_MINUTE], 0, -1, 0);
        s_chain_add (&self->chain [F_SECOND], 0, -1, 0);
        return 0;
    }
    if (s_parse_chain (parser, false, &self->chain [F_HOUR]))
        return -1;
    if (*parser->p != ':')
        return s_fail_here (parser, "expected ':' after the hour");
    parser->p++;
    if (s_parse_chain (parser, false, &self->chain [F_MINUTE]))
        return -1;
    if (*parser->p == '\0') {
        s_chain_add (&self->chain [F_SECOND], 0, -1, 0);
        return 0;
    }
    if (*parser->p != ':')
        return s_fail_here (parser, "expected ':' after the minute");
    parser->p++;
    if (s_parse_chain (parser, true, &self->chain [F_SECOND]))
        return -1;
    if (*parser->p != '\0')
        return s_fail_here (parser, "expected the end of the time");
    return 0;
}

//  The shorthands: minutely .. semiannually

static bool
s_parse_shorthand (sf_calendar_t *self, const char *body)
{
    static const struct {
        const char *name;
        int weekdays;               //  0 = any
        const char *months;         //  NULL = any, else a list
        int day, hour, minute;      //  -1 = any
    } shorthands [] = {
        { "minutely",       0, NULL,        -1, -1, -1 },
        { "hourly",         0, NULL,        -1, -1,  0 },
        { "daily",          0, NULL,        -1,  0,  0 },
        { "monthly",        0, NULL,         1,  0,  0 },
        { "weekly",         1, NULL,        -1,  0,  0 },
        { "yearly",         0, "\1",         1,  0,  0 },
        { "annually",       0, "\1",         1,  0,  0 },
        { "anually",        0, "\1",         1,  0,  0 },
        { "quarterly",      0, "\1\4\7\12",  1,  0,  0 },
        { "semiannually",   0, "\1\7",       1,  0,  0 },
        { "semi-annually",  0, "\1\7",       1,  0,  0 },
        { "biannually",     0, "\1\7",       1,  0,  0 },
        { "bi-annually",    0, "\1\7",       1,  0,  0 },
    };
    for (size_t index = 0; index < sizeof shorthands / sizeof shorthands [0]; index++) {
        if (strcasecmp (body, shorthands [index].name))
            continue;
        self->weekdays = shorthands [index].weekdays;
        for (const char *month = shorthands [index].months; month && *month; month++)
            s_chain_add (&self->chain [F_MONTH], *month, -1, 0);
        if (shorthands [index].day >= 0)
            s_chain_add (&self->chain [F_DAY], shorthands [index].day, -1, 0);
        if (shorthands [index].hour >= 0)
            s_chain_add (&self->chain [F_HOUR], shorthands [index].hour, -1, 0);
        if (shorthands [index].minute >= 0)
            s_chain_add (&self->chain [F_MINUTE], shorthands [index].minute, -1, 0);
        s_chain_add (&self->chain [F_SECOND], 0, -1, 0);
        return true;
    }
    return false;
}

//  A zoneinfo name systemd would take: a TZif file under /usr/share/zoneinfo

static bool
s_timezone_valid (const char *name)
{
    if (!*name || *name == '/' || strstr (name, "..") || strlen (name) > 255)
        return false;
    for (const char *p = name; *p; p++)
        if (!isalnum ((unsigned char) *p) && !strchr ("/-_+", *p))
            return false;
    char path [300];
    snprintf (path, sizeof path, "%s/%s", ZONEINFO, name);
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    if (fd == -1)
        return false;
    struct stat st;
    char magic [4];
    bool valid = fstat (fd, &st) == 0 && S_ISREG (st.st_mode)
              && read (fd, magic, 4) == 4 && memcmp (magic, "TZif", 4) == 0;
    close (fd);
    return valid;
}

//  Strip the zone suffix off expr into self; returns the body (caller frees)

static char *
s_split_zone (sf_calendar_t *self, const char *expr)
{
    size_t size = strlen (expr);
    if (size > 4 && strcasecmp (expr + size - 4, " UTC") == 0) {
        self->utc = true;
        return strndup (expr, size - 4);
    }
    tzset ();
    for (int dst = 0; dst < 2; dst++) {
        size_t name_size = tzname [dst]? strlen (tzname [dst]): 0;
        if (name_size == 0 || name_size >= size)
            continue;
        const char *tail = expr + size - name_size;
        if (strcasecmp (tail, tzname [dst]) == 0 && tail [-1] == ' ') {
            self->dst = dst;
            return strndup (expr, size - name_size - 1);
        }
    }
    const char *space = strrchr (expr, ' ');
    if (space && s_timezone_valid (space + 1)) {
        self->timezone = strdup (space + 1);
        return strndup (expr, (size_t) (space - expr));
    }
    return strdup (expr);
}

static int
s_parse_body (parser_t *parser, sf_calendar_t *self)
{
    if (*parser->p == '\0')
        return s_fail (parser, *parser->expr? "nothing before the time zone": "empty expression");
    if (s_parse_shorthand (self, parser->p))
        return 0;
    if (s_parse_weekdays (parser, self))
        return -1;
    if (*parser->p == '@') {        //  a whole moment: no time follows
        if (s_parse_epoch (parser, self))
            return -1;
    }
    else
    if (s_parse_date (parser, self) || s_parse_time (parser, self))
        return -1;
    if (*parser->p != '\0')
        return s_fail_here (parser, "expected the end");
    return 0;
}

//  systemd's normalization, then the range checks

static int
s_normalize (parser_t *parser, sf_calendar_t *self)
{
    if (self->timezone && streq (self->timezone, "UTC")) {
        self->utc = true;
        zstr_free (&self->timezone);
    }
    if (self->weekdays <= 0 || self->weekdays >= ALL_WEEKDAYS)
        self->weekdays = 0;
    if (self->end_of_month && self->chain [F_DAY].size == 0)
        self->end_of_month = false;
    chain_t *years = &self->chain [F_YEAR];
    for (size_t index = 0; index < years->size; index++) {
        comp_t *c = &years->items [index];  //  12 -> 2012, 89 -> 1989
        if (c->start >= 0 && c->start < 100)
            c->start += c->start < 70? 2000: 1900;
        if (c->stop >= 0 && c->stop < 100)
            c->stop += c->stop < 70? 2000: 1900;
    }
    for (int field = 0; field < F_LAST; field++) {
        s_chain_normalize (&self->chain [field]);
        bool end_of_month = field == F_DAY && self->end_of_month;
        const char *why;
        int to;
        const comp_t *bad = s_chain_bad (&self->chain [field], field, end_of_month, &why, &to);
        if (bad) {
            char *text = NULL;
            size_t size = 0;
            FILE *out = open_memstream (&text, &size);
            assert (out);
            s_comp_print (out, bad, 0, field == F_SECOND);
            fclose (out);
            if (field == F_SECOND)
                to /= USEC;
            s_fail (parser, "%s%s '%s' %s (%s%d..%s%d)", s_fields [field].name,
                    end_of_month? " from the end": "", text, why, end_of_month? "~": "",
                    s_fields [field].from, end_of_month? "~": "", to);
            free (text);
            return -1;
        }
    }
    return 0;
}

static char *
s_format (sf_calendar_t *self)
{
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream (&text, &size);
    assert (out);
    if (self->weekdays) {
        //  Runs of three or more days as "A..C", of two as "A,B"
        bool comma = false;
        for (int day = 0; day < 7; day++) {
            if (!(self->weekdays & (1 << day)))
                continue;
            int last = day;
            while (last < 6 && (self->weekdays & (1 << (last + 1))))
                last++;
            fprintf (out, "%s%s", comma? ",": "", s_day_names [day]);
            if (last > day)
                fprintf (out, "%s%s", last > day + 1? "..": ",", s_day_names [last]);
            comma = true;
            day = last;
        }
        fputc (' ', out);
    }
    s_chain_print (out, &self->chain [F_YEAR], F_YEAR);
    fputc ('-', out);
    s_chain_print (out, &self->chain [F_MONTH], F_MONTH);
    fputc (self->end_of_month? '~': '-', out);
    s_chain_print (out, &self->chain [F_DAY], F_DAY);
    fputc (' ', out);
    s_chain_print (out, &self->chain [F_HOUR], F_HOUR);
    fputc (':', out);
    s_chain_print (out, &self->chain [F_MINUTE], F_MINUTE);
    fputc (':', out);
    s_chain_print (out, &self->chain [F_SECOND], F_SECOND);
    if (self->utc)
        fputs (" UTC", out);
    else
    if (self->timezone)
        fprintf (out, " %s", self->timezone);
    else
    if (self->dst >= 0) {
        tzset ();
        if (tzname [self->dst] && *tzname [self->dst])
            fprintf (out, " %s", tzname [self->dst]);
    }
    fclose (out);
    return text;
}

//  --------------------------------------------------------------------------
//  Constructor

sf_calendar_t *
sf_calendar_parse (const char *expr, sf_err_t *err)
{
    assert (expr);
    sf_calendar_t *self = (sf_calendar_t *) zmalloc (sizeof (sf_calendar_t));
    self->dst = -1;
    parser_t parser = { .expr = expr, .err = err };
    char *body = s_split_zone (self, expr);
    assert (body);
    parser.p = body;
    if (s_parse_body (&parser, self) || s_normalize (&parser, self))
        sf_calendar_destroy (&self);
    else
        self->normalized = s_format (self);
    free (body);
    return self;
}

//  --------------------------------------------------------------------------
//  Destructor

void
sf_calendar_destroy (sf_calendar_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        sf_calendar_t *self = *self_p;
        for (int field = 0; field < F_LAST; field++)
            s_chain_clear (&self->chain [field]);
        free (self->timezone);
        free (self->normalized);
        free (self);
        *self_p = NULL;
    }
}

//  --------------------------------------------------------------------------
//  Normalized form

const char *
sf_calendar_normalized (sf_calendar_t *self)
{
    assert (self);
    return self->normalized;
}

//  --------------------------------------------------------------------------
//  Next elapse

//  Smallest value >= value and <= top that the chain matches, or -1.
//  month_days: the month's length, for days counted from its end.

static int
s_chain_next (const chain_t *chain, int value, int top, int month_days)
{
    if (value > top)
        return -1;
    if (chain->size == 0)
        return value;
    int best = -1;
    for (size_t index = 0; index < chain->size; index++) {
        const comp_t *c = &chain->items [index];
        int start = c->start, stop = c->stop;
        if (month_days) {           //  "~3..1" is the last three days
            start = month_days + 1 - c->start;
            if (c->stop >= 0) {
                stop = month_days + 1 - c->start;
                start = month_days + 1 - c->stop;
            }
        }
        int candidate = -1;
        if (start >= value)
            candidate = start;
        else
        if (c->repeat > 0) {
            int64_t k = start + (int64_t) c->repeat * ((value - start + c->repeat - 1) / c->repeat);
            if (k <= INT_MAX && (stop < 0 || k <= stop))
                candidate = (int) k;
        }
        if (candidate >= 0 && candidate <= top && (best < 0 || candidate < best))
            best = candidate;
    }
    return best;
}

//  First matching time of day at or after the given second of the day;
//  returns seconds since midnight or -1

static int
s_next_time (sf_calendar_t *self, int from)
{
    int hour0 = from / 3600, minute0 = from / 60 % 60, second0 = from % 60;
    for (int hour = s_chain_next (&self->chain [F_HOUR], hour0, 23, 0); hour >= 0;
         hour = s_chain_next (&self->chain [F_HOUR], hour + 1, 23, 0)) {
        bool same_hour = hour == hour0;
        for (int minute = s_chain_next (&self->chain [F_MINUTE], same_hour? minute0: 0, 59, 0);
             minute >= 0; minute = s_chain_next (&self->chain [F_MINUTE], minute + 1, 59, 0)) {
            bool same_minute = same_hour && minute == minute0;
            int usec = s_chain_next (&self->chain [F_SECOND], same_minute? second0 * USEC: 0,
                                     60 * USEC - 1, 0);
            if (usec >= 0)
                return hour * 3600 + minute * 60 + usec / USEC;
        }
    }
    return -1;
}

static bool
s_leap (int year)
{
    return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

static int
s_month_days (int year, int month)
{
    static const int days [] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    return month == 2 && s_leap (year)? 29: days [month - 1];
}

//  Days since 1970-01-01 of a civil date (proleptic Gregorian)

static int64_t
s_days_from_civil (int year, int month, int day)
{
    int64_t y = year - (month <= 2);
    int64_t era = (y >= 0? y: y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (month + (month > 2? -3: 9)) + 2) / 5 + day - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

//  Wall-clock date and second of day -> the first epoch second after
//  `after` that shows it, or -1. A local time skipped when DST starts does
//  not exist; one repeated when DST ends counts once, at its first
//  occurrence still ahead (as systemd does).

static int64_t
s_to_epoch (sf_calendar_t *self, int year, int month, int day, int second, int64_t after)
{
    if (self->utc)
        return s_days_from_civil (year, month, day) * 86400 + second;
    int64_t best = -1;
    for (int dst = 0; dst < 2; dst++) {
        if (self->dst >= 0 && dst != self->dst)
            continue;
        struct tm tm = {
            .tm_year = year - 1900, .tm_mon = month - 1, .tm_mday = day,
            .tm_hour = second / 3600, .tm_min = second / 60 % 60, .tm_sec = second % 60,
            .tm_isdst = dst,
        };
        struct tm want = tm;
        time_t when = mktime (&tm);
        if (when == (time_t) -1 || tm.tm_isdst != dst || tm.tm_mday != want.tm_mday
        ||  tm.tm_hour != want.tm_hour || tm.tm_min != want.tm_min || tm.tm_sec != want.tm_sec)
            continue;               //  not a time this offset shows
        if (when > after && (best < 0 || when < best))
            best = when;
    }
    return best;
}

static int64_t
s_next_in_zone (sf_calendar_t *self, int64_t after)
{
    if (after < -1)
        after = -1;
    time_t start = (time_t) (after + 1);
    struct tm tm;
    if (!(self->utc? gmtime_r (&start, &tm): localtime_r (&start, &tm)))
        return -1;
    int year0 = tm.tm_year + 1900, month0 = tm.tm_mon + 1, day0 = tm.tm_mday;
    int second0 = tm.tm_hour * 3600 + tm.tm_min * 60 + tm.tm_sec;
    const chain_t *chains = self->chain;
    for (int year = s_chain_next (&chains [F_YEAR], year0, MAX_YEAR, 0); year >= 0;
         year = s_chain_next (&chains [F_YEAR], year + 1, MAX_YEAR, 0)) {
        bool same_year = year == year0;
        for (int month = s_chain_next (&chains [F_MONTH], same_year? month0: 1, 12, 0);
             month >= 0; month = s_chain_next (&chains [F_MONTH], month + 1, 12, 0)) {
            bool same_month = same_year && month == month0;
            int length = s_month_days (year, month);
            int month_days = self->end_of_month? length: 0;
            for (int day = s_chain_next (&chains [F_DAY], same_month? day0: 1, length, month_days);
                 day >= 0; day = s_chain_next (&chains [F_DAY], day + 1, length, month_days)) {
                int64_t days = s_days_from_civil (year, month, day);
                int weekday = (int) (((days % 7) + 7 + 3) % 7);     //  1970-01-01 was a Thursday
                if (self->weekdays && !(self->weekdays & (1 << weekday)))
                    continue;
                bool same_day = same_month && day == day0;
                int second = s_next_time (self, same_day? second0: 0);
                while (second >= 0) {
                    int64_t when = s_to_epoch (self, year, month, day, second, after);
                    if (when > after)
                        return when;
                    //  Not there (DST gap) or repeated and past (DST end)
                    second = second < 86399? s_next_time (self, second + 1): -1;
                }
            }
        }
    }
    return -1;
}

int64_t
sf_calendar_next (sf_calendar_t *self, int64_t after)
{
    assert (self);
    if (!self->timezone)
        return s_next_in_zone (self, after);
    //  Compute in the named zone: TZ switched for the call, then restored
    const char *old = getenv ("TZ");
    char *saved = old? strdup (old): NULL;
    char *zone = zsys_sprintf (":%s", self->timezone);
    setenv ("TZ", zone, 1);
    tzset ();
    int64_t when = s_next_in_zone (self, after);
    if (saved)
        setenv ("TZ", saved, 1);
    else
        unsetenv ("TZ");
    tzset ();
    zstr_free (&zone);
    free (saved);
    return when;
}

//  --------------------------------------------------------------------------
//  Self test

//  The golden cases (tests/data/calendar-cases.txt, from systemd-analyze)

static const char *
s_cases_path (void)
{
#ifdef SF_CALENDAR_CASES
    return SF_CALENDAR_CASES;
#else
    static char path [1024];
    const char *slash = strrchr (__FILE__, '/');
    snprintf (path, sizeof path, "%.*s/../tests/data/calendar-cases.txt",
              slash? (int) (slash - __FILE__): 1, slash? __FILE__: ".");
    return path;
#endif
}

//  One case: "EXPR|NORMALIZED|ELAPSES"; returns true if we agree

static bool
s_check_case (char *line, int64_t base, bool verbose)
{
    char *expr = line, *normalized = strchr (line, '|');
    assert (normalized);
    *normalized++ = '\0';
    char *elapses = strchr (normalized, '|');
    assert (elapses);
    *elapses++ = '\0';
    sf_err_t err = SF_ERR_INIT;
    sf_calendar_t *cal = sf_calendar_parse (expr, &err);
    bool ok = true;
    if (streq (normalized, "invalid")) {
        ok = cal == NULL && err.code == SF_EINVAL;
        if (!ok)
            printf ("\n   '%s': systemd refuses it, we parse '%s'", expr,
                    sf_calendar_normalized (cal));
        else
        if (verbose)
            printf ("\n   '%s': %s", expr, err.text);
        sf_calendar_destroy (&cal);
        return ok;
    }
    if (!cal) {
        printf ("\n   '%s': %s", expr, err.text);
        return false;
    }
    if (!streq (sf_calendar_normalized (cal), normalized)) {
        printf ("\n   '%s': normalized '%s', systemd '%s'", expr,
                sf_calendar_normalized (cal), normalized);
        ok = false;
    }
    //  The normalized form reads back as itself
    sf_calendar_t *again = sf_calendar_parse (sf_calendar_normalized (cal), &err);
    if (!again || !streq (sf_calendar_normalized (again), sf_calendar_normalized (cal))) {
        printf ("\n   '%s': normalized form does not read back", expr);
        ok = false;
    }
    sf_calendar_destroy (&again);
    int64_t previous = base;
    char *saveptr = NULL;
    int count = 0;
    for (char *word = strtok_r (elapses, " ", &saveptr); word;
         word = strtok_r (NULL, " ", &saveptr)) {
        int64_t expected = streq (word, "never")? -1: strtoll (word, NULL, 10);
        int64_t got = sf_calendar_next (cal, previous);
        if (got != expected) {
            printf ("\n   '%s': next after %" PRId64 " is %" PRId64 ", systemd %" PRId64,
                    expr, previous, got, expected);
            ok = false;
            break;
        }
        previous = expected;
        count++;
    }
    //  Fewer than 5 elapses: systemd found no more
    if (ok && count < 5 && previous >= 0 && sf_calendar_next (cal, previous) != -1) {
        printf ("\n   '%s': elapses after %" PRId64 ", systemd never", expr, previous);
        ok = false;
    }
    sf_calendar_destroy (&cal);
    return ok;
}

static void
s_test_golden (bool verbose)
{
    const char *path = s_cases_path ();
    FILE *file = fopen (path, "r");
    if (!file)
        printf ("\n   cannot open '%s'", path);
    assert (file);
    char line [1024];
    int64_t base = -1;
    int cases = 0, passed = 0;
    while (fgets (line, sizeof line, file)) {
        line [strcspn (line, "\n")] = '\0';
        if (line [0] == '#' || line [0] == '\0')
            continue;
        if (strncmp (line, "base ", 5) == 0) {
            base = strtoll (line + 5, NULL, 10);
            continue;
        }
        assert (base > 0);
        cases++;
        if (s_check_case (line, base, verbose))
            passed++;
    }
    fclose (file);
    printf ("\n   %d of %d systemd-analyze cases pass ", passed, cases);
    assert (cases >= 60);
    assert (passed == cases);
}

//  Messages name the bad part

static void
s_test_errors (void)
{
    static const struct {
        const char *expr, *text;
    } cases [] = {
        { "bogus", "invalid calendar expression 'bogus': expected a number, not 'bogus'" },
        { "*-*-* 25:00", "invalid calendar expression '*-*-* 25:00': "
                         "hour '25' out of range (0..23)" },
        { "Wed..Mon", "invalid calendar expression 'Wed..Mon': "
                      "weekday range ending in 'Mon' goes backwards" },
        { "*-*-32", "invalid calendar expression '*-*-32': day '32' out of range (1..31)" },
        { "*-*~29", "invalid calendar expression '*-*~29': "
                    "day from the end '29' out of range (~1..~28)" },
        { "Mon..", "invalid calendar expression 'Mon..': weekday range without an end" },
        { "12:00 X", "invalid calendar expression '12:00 X': "
                     "expected ':' after the minute, not ' X'" },
        { "5..3:00", "invalid calendar expression '5..3:00': hour '5..3' is an empty range (0..23)" },
        { "*-*~1/1", "invalid calendar expression '*-*~1/1': "
                     "day from the end '1/1' repeats past the end of the range (~1..~28)" },
        { "0/0:00", "invalid calendar expression '0/0:00': repetition '0/0' is zero" },
        { "", "invalid calendar expression '': empty expression" },
        { " UTC", "invalid calendar expression ' UTC': nothing before the time zone" },
        { "Fri 13", "invalid calendar expression 'Fri 13': expected ':' after the hour at the end" },
    };
    for (size_t index = 0; index < sizeof cases / sizeof cases [0]; index++) {
        sf_err_t err = SF_ERR_INIT;
        sf_calendar_t *cal = sf_calendar_parse (cases [index].expr, &err);
        assert (cal == NULL);
        if (!streq (err.text, cases [index].text))
            printf ("\n   '%s': '%s'", cases [index].expr, err.text);
        assert (err.code == SF_EINVAL);
        assert (streq (err.text, cases [index].text));
    }
}

void
sf_calendar_test (bool verbose)
{
    printf (" * sf_calendar: ");
    //  @selftest
    //  The golden cases were made with TZ=UTC
    const char *old = getenv ("TZ");
    char *saved = old? strdup (old): NULL;
    setenv ("TZ", "UTC", 1);
    tzset ();

    s_test_golden (verbose);
    s_test_errors ();

    sf_err_t err = SF_ERR_INIT;
    sf_calendar_t *cal = sf_calendar_parse ("Mon..Fri 22:00 UTC", &err);
    assert (cal);
    assert (streq (sf_calendar_normalized (cal), "Mon..Fri *-*-* 22:00:00 UTC"));
    //  Fri 2026-11-27 22:00 -> Mon 2026-11-30 22:00
    assert (sf_calendar_next (cal, 1795816800) == 1796076000);
    assert (sf_calendar_next (cal, 1795816799) == 1795816800);
    sf_calendar_destroy (&cal);
    sf_calendar_destroy (&cal);
    //  The last elapse there can be
    cal = sf_calendar_parse ("2199-12-31 23:59:59", &err);
    assert (cal);
    assert (sf_calendar_next (cal, 0) == 7258118399);
    assert (sf_calendar_next (cal, 7258118399) == -1);
    sf_calendar_destroy (&cal);
    //  A zone: Berlin noon in summer is 10:00 UTC; TZ comes back
    cal = sf_calendar_parse ("2027-07-01 12:00 Europe/Berlin", &err);
    assert (cal);
    assert (sf_calendar_next (cal, 0) == 1814436000);
    assert (streq (getenv ("TZ"), "UTC"));
    sf_calendar_destroy (&cal);

    if (saved)
        setenv ("TZ", saved, 1);
    else
        unsetenv ("TZ");
    tzset ();
    free (saved);
    //  @end
    printf ("OK\n");
}
