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

//  Append a JSON string literal (with quotes) for s to buf

static void
s_json_str (char *buf, size_t size, const char *s)
{
    size_t len = strlen (buf);
    if (len + 2 >= size)
        return;
    buf [len++] = '"';
    for (; *s && len + 8 < size; s++) {
        unsigned char c = (unsigned char) *s;
        if (c == '"' || c == '\\') {
            buf [len++] = '\\';
            buf [len++] = (char) c;
        }
        else
        if (c < 0x20)
            len += (size_t) snprintf (buf + len, size - len, "\\u%04x", c);
        else
            buf [len++] = (char) c;
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
        snprintf (line, sizeof (line), "%s %s %s", ts, lname, module);
        if (ctx && ctx->node) {
            size_t len = strlen (line);
            snprintf (line + len, sizeof (line) - len, " node=%s", ctx->node);
        }
        if (ctx && ctx->job_id) {
            size_t len = strlen (line);
            snprintf (line + len, sizeof (line) - len, " job=%s", ctx->job_id);
        }
        if (ctx && ctx->vm) {
            size_t len = strlen (line);
            snprintf (line + len, sizeof (line) - len, " vm=%s", ctx->vm);
        }
        size_t len = strlen (line);
        snprintf (line + len, sizeof (line) - len, ": %s", msg);
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
    sf_log_setup (SF_LOG_INFO, SF_LOG_TEXT);
    //  @end
    printf ("OK\n");
}
