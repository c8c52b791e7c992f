/*  =========================================================================
    sf_log - process-wide log sink (stderr, text or JSON lines)

    Written with one fprintf per record so that lines from several threads
    (job actors) never interleave mid-line.
    =========================================================================
*/
#include "sf_core.h"

static sf_log_level_t s_level = SF_LOG_INFO;
static sf_log_format_t s_format = SF_LOG_TEXT;

static const char *s_level_names [] = {
    [SF_LOG_ERR] = "err", [SF_LOG_WARNING] = "warning",
    [SF_LOG_NOTICE] = "notice", [SF_LOG_INFO] = "info",
    [SF_LOG_DEBUG] = "debug",
};

void
sf_log_setup (sf_log_level_t level, sf_log_format_t format)
{
    s_level = level;
    s_format = format;
}

int
sf_log_level_parse (const char *name)
{
    for (int level = SF_LOG_ERR; level <= SF_LOG_DEBUG; level++)
        if (name && streq (name, s_level_names [level]))
            return level;
    return -1;
}

int
sf_log_format_parse (const char *name)
{
    if (name && streq (name, "text"))
        return SF_LOG_TEXT;
    if (name && streq (name, "json"))
        return SF_LOG_JSON;
    return -1;
}

bool
sf_log_enabled (sf_log_level_t level)
{
    return level <= s_level;
}

//  Length of the valid UTF-8 sequence at s (1 to 4), or 0 if the bytes
//  there are not one (sf_utf8_seq_len). A C1 control (U+0080..U+009F)
//  counts as invalid too: terminals obey them.

static size_t
s_utf8_length (const unsigned char *s)
{
    if (s [0] == 0xC2 && s [1] >= 0x80 && s [1] <= 0x9F)
        return 0;
    return sf_utf8_seq_len ((const char *) s);
}

size_t
sf_log_escape (const char *text, char *buf, size_t size)
{
    assert (text && buf && size > 0);
    size_t length = 0;
    const unsigned char *s = (const unsigned char *) text;
    while (*s) {
        char piece [8];
        size_t step = s_utf8_length (s);
        if (step == 1 && *s >= 0x20 && *s < 0x7F && *s != '\\') {
            piece [0] = (char) *s;
            piece [1] = '\0';
        }
        else
        if (step > 1) {
            memcpy (piece, s, step);
            piece [step] = '\0';
        }
        else {
            step = 1;
            const char *named = *s == '\n'? "\\n": *s == '\r'? "\\r": *s == '\t'? "\\t"
                              : *s == '\\'? "\\\\": NULL;
            if (named)
                snprintf (piece, sizeof (piece), "%s", named);
            else
                snprintf (piece, sizeof (piece), "\\x%02x", *s);
        }
        size_t piece_length = strlen (piece);
        if (length + piece_length >= size)
            break;              //  Cut at a whole piece, never mid-escape
        memcpy (buf + length, piece, piece_length);
        length += piece_length;
        s += step;
    }
    buf [length] = '\0';
    return length;
}

char *
sf_log_escape_dup (const char *text)
{
    assert (text);
    size_t size = strlen (text) * 4 + 1;
    char *buf = (char *) malloc (size);
    assert (buf);
    sf_log_escape (text, buf, size);
    return buf;
}

//  Append a JSON string literal (with quotes) for s to buf: control
//  characters and bytes that are not UTF-8 as \u00XX, so the line stays
//  valid JSON whatever a peer sent

static void
s_json_str (char *buf, size_t size, const char *s)
{
    size_t len = strlen (buf);
    if (len + 2 >= size)
        return;
    buf [len++] = '"';
    const unsigned char *at = (const unsigned char *) s;
    while (*at && len + 8 < size) {
        size_t step = s_utf8_length (at);
        if (*at == '"' || *at == '\\') {
            buf [len++] = '\\';
            buf [len++] = (char) *at++;
        }
        else
        if (step == 0 || *at < 0x20 || *at == 0x7F) {
            len += (size_t) snprintf (buf + len, size - len, "\\u%04x", *at);
            at++;
        }
        else {
            memcpy (buf + len, at, step);
            len += step;
            at += step;
        }
    }
    buf [len++] = '"';
    buf [len] = '\0';
}

void
sf_log_write (sf_log_level_t level, const char *module,
              const sf_logctx_t *ctx, const char *format, ...)
{
    if (!sf_log_enabled (level))
        return;
    char msg [2048];
    va_list args;
    va_start (args, format);
    vsnprintf (msg, sizeof (msg), format, args);
    va_end (args);

    char ts [40];
    sf_time_rfc3339 (sf_time_now_ms (), ts, sizeof (ts));
    const char *lname = s_level_names [level];
    char line [4096];
    line [0] = '\0';
    if (s_format == SF_LOG_JSON) {
        snprintf (line, sizeof (line), "{\"ts\":\"%s\",\"level\":\"%s\",\"module\":\"%s\"",
                  ts, lname, module);
        const char *keys [] = { "job_id", "node", "vm" };
        const char *vals [] = { ctx? ctx->job_id: NULL, ctx? ctx->node: NULL,
                                ctx? ctx->vm: NULL };
        for (int i = 0; i < 3; i++)
            if (vals [i]) {
                size_t len = strlen (line);
                snprintf (line + len, sizeof (line) - len, ",\"%s\":", keys [i]);
                s_json_str (line, sizeof (line), vals [i]);
            }
        size_t len = strlen (line);
        snprintf (line + len, sizeof (line) - len, ",\"msg\":");
        s_json_str (line, sizeof (line), msg);
        len = strlen (line);
        snprintf (line + len, sizeof (line) - len, "}");
    }
    else {
        //  Every value escaped: a peer's string cannot end the line, forge
        //  another, or send the terminal an escape sequence
        snprintf (line, sizeof (line), "%s %s %s", ts, lname, module);
        const char *keys [] = { "node", "job", "vm" };
        const char *vals [] = { ctx? ctx->node: NULL, ctx? ctx->job_id: NULL,
                                ctx? ctx->vm: NULL };
        char escaped [1024];
        for (int i = 0; i < 3; i++)
            if (vals [i]) {
                sf_log_escape (vals [i], escaped, sizeof (escaped));
                size_t len = strlen (line);
                snprintf (line + len, sizeof (line) - len, " %s=%s", keys [i], escaped);
            }
        size_t len = strlen (line);
        snprintf (line + len, sizeof (line) - len, ": ");
        len = strlen (line);
        sf_log_escape (msg, line + len, sizeof (line) - len);
    }
    fprintf (stderr, "%s\n", line);
}

void
sf_log_test (bool verbose)
{
    (void) verbose;
    printf (" * sf_log: ");
    //  @selftest
    assert (sf_log_level_parse ("debug") == SF_LOG_DEBUG);
    assert (sf_log_level_parse ("err") == SF_LOG_ERR);
    assert (sf_log_level_parse ("loud") == -1);
    assert (sf_log_format_parse ("json") == SF_LOG_JSON);
    assert (sf_log_format_parse ("xml") == -1);
    sf_log_setup (SF_LOG_WARNING, SF_LOG_TEXT);
    assert (!sf_log_enabled (SF_LOG_INFO));
    assert (sf_log_enabled (SF_LOG_ERR));
    char buf [64] = "";
    s_json_str (buf, sizeof (buf), "a\"b\\c\n");
    assert (streq (buf, "\"a\\\"b\\\\c\\u000a\""));
    buf [0] = '\0';
    s_json_str (buf, sizeof (buf), "\x1b[2J\xff\x7f\xc3\xa9");
    assert (streq (buf, "\"\\u001b[2J\\u00ff\\u007f\xc3\xa9\""));

    //  Peer strings are escaped: control characters, ANSI escapes, C1
    //  controls, invalid UTF-8 and backslashes; valid UTF-8 stays
    const struct { const char *in, *out; } escapes [] = {
        { "plain vm-1_2.x", "plain vm-1_2.x" },
        { "n1\n2026-12-07T00:00:00Z err x: forged",
          "n1\\n2026-12-07T00:00:00Z err x: forged" },
        { "\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m" },
        { "a\rb\tc\\d", "a\\rb\\tc\\\\d" },
        { "\x7f\x01", "\\x7f\\x01" },
        { "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
          "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80" },
        { "\xc2\x9b" "2J", "\\xc2\\x9b" "2J" },             //  C1 CSI
        { "\xff\xc0\xaf\xed\xa0\x80\xe2\x82",
          "\\xff\\xc0\\xaf\\xed\\xa0\\x80\\xe2\\x82" },
        { "", "" },
    };
    char escaped [128];
    for (size_t i = 0; i < sizeof (escapes) / sizeof (escapes [0]); i++) {
        sf_log_escape (escapes [i].in, escaped, sizeof (escaped));
        if (!streq (escaped, escapes [i].out))
            fprintf (stderr, "\n'%s' -> '%s'\n", escapes [i].out, escaped);
        assert (streq (escaped, escapes [i].out));
        char *copy = sf_log_escape_dup (escapes [i].in);
        assert (streq (copy, escapes [i].out));
        free (copy);
    }
    //  Cut at a whole escape, never inside one
    assert (sf_log_escape ("ab\x1b", escaped, 6) == 2 && streq (escaped, "ab"));

    //  A text log line with a hostile node name and message is one line
    char *text = NULL;
    size_t text_size = 0;
    FILE *capture = open_memstream (&text, &text_size);
    FILE *saved = stderr;
    stderr = capture;
    sf_logctx_t ctx = { .node = "n1\nforged", .vm = "\x1b]0;title\x07" };
    sf_log_write (SF_LOG_ERR, "test", &ctx, "error: %s", "bad\r\ntext\xff");
    stderr = saved;
    fclose (capture);
    assert (strchr (text, '\n') == text + strlen (text) - 1);
    assert (strstr (text, " node=n1\\nforged vm=\\x1b]0;title\\x07: "
                          "error: bad\\r\\ntext\\xff\n"));
    free (text);
    sf_log_setup (SF_LOG_INFO, SF_LOG_TEXT);
    //  @end
    printf ("OK\n");
}
