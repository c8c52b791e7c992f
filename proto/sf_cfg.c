/*  =========================================================================
    sf_cfg - INI configuration through a schema table (inih underneath)
    =========================================================================
*/
#include "sf_core.h"
#include <ini.h>

typedef struct {
    const sf_cfg_opt_t *schema;
    void *target;
    sf_err_t *err;
    const char *name;
    bool failed;            //  a value was rejected (inih returns its line)
} parse_t;

static const sf_cfg_opt_t *
s_lookup (const sf_cfg_opt_t *schema, const char *section, const char *key)
{
    for (const sf_cfg_opt_t *opt = schema; opt->key; opt++)
        if (streq (opt->section, section) && streq (opt->key, key))
            return opt;
    return NULL;
}

static bool
s_section_known (const sf_cfg_opt_t *schema, const char *section)
{
    for (const sf_cfg_opt_t *opt = schema; opt->key; opt++)
        if (streq (opt->section, section))
            return true;
    return false;
}

static int
s_parse_bool (const char *value, bool *result)
{
    static const char *yes [] = { "true", "yes", "on", "1" };
    static const char *no [] = { "false", "no", "off", "0" };
    for (size_t i = 0; i < 4; i++) {
        if (streq (value, yes [i])) {
            *result = true;
            return 0;
        }
        if (streq (value, no [i])) {
            *result = false;
            return 0;
        }
    }
    return -1;
}

static int
s_assign (const sf_cfg_opt_t *opt, void *target, const char *value, sf_err_t *err)
{
    char *field = (char *) target + opt->offset;
    switch (opt->type) {
        case SF_CFG_STR: {
            char **str = (char **) field;
            free (*str);
            *str = strdup (value);
            return 0;
        }
        case SF_CFG_INT: {
            char *end;
            errno = 0;
            long long number = strtoll (value, &end, 10);
            if (errno || end == value || *end)
                return sf_err_set (err, SF_EINVAL, "'%s.%s' must be an integer, not '%s'",
                                   opt->section, opt->key, value);
            *(int64_t *) field = number;
            return 0;
        }
        case SF_CFG_BOOL:
            if (s_parse_bool (value, (bool *) field))
                return sf_err_set (err, SF_EINVAL, "'%s.%s' must be true or false, not '%s'",
                                   opt->section, opt->key, value);
            return 0;
        case SF_CFG_DURATION:
            if (sf_parse_duration_ms (value, (int64_t *) field))
                return sf_err_set (err, SF_EINVAL,
                                   "'%s.%s' must be a duration such as 30s or 250ms, not '%s'",
                                   opt->section, opt->key, value);
            return 0;
        case SF_CFG_SIZE:
            if (sf_parse_size (value, (uint64_t *) field))
                return sf_err_set (err, SF_EINVAL,
                                   "'%s.%s' must be a size such as 64MiB, not '%s'",
                                   opt->section, opt->key, value);
            return 0;
    }
    return sf_err_set (err, SF_EINVAL, "bad option type");
}

int
sf_cfg_defaults (const sf_cfg_opt_t *schema, void *target, sf_err_t *err)
{
    for (const sf_cfg_opt_t *opt = schema; opt->key; opt++)
        if (opt->dflt && s_assign (opt, target, opt->dflt, err))
            return -1;
    return 0;
}

int
sf_cfg_set (const sf_cfg_opt_t *schema, void *target, const char *section,
            const char *key, const char *value, sf_err_t *err)
{
    const sf_cfg_opt_t *opt = s_lookup (schema, section, key);
    if (!opt) {
        if (!s_section_known (schema, section))
            return sf_err_set (err, SF_EINVAL, "unknown section '[%s]'", section);
        return sf_err_set (err, SF_EINVAL, "unknown key '%s' in section '[%s]'", key, section);
    }
    return s_assign (opt, target, value, err);
}

//  inih callback: nonzero on success, zero on error. inih goes on parsing
//  after an error and returns the line of the first one; we keep only the
//  first message. Debian's inih is built without per-call line numbers.

static int
s_handler (void *user, const char *section, const char *name, const char *value)
{
    parse_t *parse = (parse_t *) user;
    if (parse->failed)
        return 0;
    if (!name)
        return 1;               //  section header alone
    if (sf_cfg_set (parse->schema, parse->target, section, name, value, parse->err)) {
        parse->failed = true;
        return 0;
    }
    return 1;
}

static int
s_finish (parse_t *parse, int rc)
{
    if (parse->failed)
        return sf_err_prefix (parse->err, "%s:%d", parse->name, rc);
    if (rc == -1)
        return sf_err_set (parse->err, SF_ENOENT, "cannot open config file '%s': %s",
                           parse->name, strerror (errno));
    if (rc > 0)
        return sf_err_set (parse->err, SF_EINVAL, "%s:%d: syntax error", parse->name, rc);
    if (rc < 0)
        return sf_err_set (parse->err, SF_EIO, "cannot read config file '%s'", parse->name);
    return 0;
}

int
sf_cfg_load (const sf_cfg_opt_t *schema, void *target, const char *path, sf_err_t *err)
{
    parse_t parse = { schema, target, err, path, false };
    return s_finish (&parse, ini_parse (path, s_handler, &parse));
}

int
sf_cfg_load_string (const sf_cfg_opt_t *schema, void *target, const char *text,
                    const char *name, sf_err_t *err)
{
    parse_t parse = { schema, target, err, name, false };
    return s_finish (&parse, ini_parse_string (text, s_handler, &parse));
}

void
sf_cfg_release (const sf_cfg_opt_t *schema, void *target)
{
    for (const sf_cfg_opt_t *opt = schema; opt->key; opt++)
        if (opt->type == SF_CFG_STR) {
            char **str = (char **) ((char *) target + opt->offset);
            free (*str);
            *str = NULL;
        }
}

//  --------------------------------------------------------------------------
//  Checks after loading: finding the line of a key in INI text

//  Largest config file we read back for line numbers
#define S_MAX_TEXT (1024 * 1024)

static char *
s_trim (char *text)
{
    while (isspace ((unsigned char) *text))
        text++;
    char *end = text + strlen (text);
    while (end > text && isspace ((unsigned char) end [-1]))
        *--end = '\0';
    return text;
}

//  Handle one line: track the section, return true if it assigns key

static bool
s_line_assigns (char *line, char *section, size_t size, const char *want_section,
                const char *key)
{
    char *comment = strpbrk (line, ";#");
    if (comment)
        *comment = '\0';
    line = s_trim (line);
    if (*line == '[') {
        char *close = strchr (line, ']');
        if (close)
            *close = '\0';
        snprintf (section, size, "%s", s_trim (line + 1));
        return false;
    }
    char *equals = strpbrk (line, "=:");
    if (!equals || !streq (section, want_section))
        return false;
    *equals = '\0';
    return streq (s_trim (line), key);
}

int
sf_cfg_key_line (const char *text, const char *section, const char *key)
{
    if (!text)
        return 0;
    char current [128] = "";
    int found = 0, number = 0;
    const char *start = text;
    while (*start) {
        const char *end = strchr (start, '\n');
        size_t length = end? (size_t) (end - start): strlen (start);
        char *line = strndup (start, length);
        number++;
        if (s_line_assigns (line, current, sizeof (current), section, key))
            found = number;
        free (line);
        start = end? end + 1: start + length;
    }
    return found;
}

int
sf_cfg_fail (sf_err_t *err, const char *name, const char *text, const char *section,
             const char *key, const char *format, ...)
{
    char message [256];
    va_list args;
    va_start (args, format);
    vsnprintf (message, sizeof (message), format, args);
    va_end (args);
    int line = sf_cfg_key_line (text, section, key);
    if (line)
        return sf_err_set (err, SF_EINVAL, "%s:%d: %s", name, line, message);
    return sf_err_set (err, SF_EINVAL, "%s: %s", name, message);
}

char *
sf_cfg_read_text (const char *path)
{
    FILE *file = fopen (path, "r");
    if (!file)
        return NULL;
    char *text = (char *) zmalloc (S_MAX_TEXT + 1);
    size_t size = fread (text, 1, S_MAX_TEXT, file);
    text [size] = '\0';
    fclose (file);
    return text;
}

//  --------------------------------------------------------------------------
//  Self test

typedef struct {
    char *name;
    int64_t max_jobs;
    bool verbose;
    int64_t heartbeat;
    uint64_t scratch;
} test_cfg_t;

static const sf_cfg_opt_t s_test_schema [] = {
    { "worker", "name", SF_CFG_STR, offsetof (test_cfg_t, name), "hv01", "node name" },
    { "worker", "max_jobs", SF_CFG_INT, offsetof (test_cfg_t, max_jobs), "2", "jobs at once" },
    { "worker", "verbose", SF_CFG_BOOL, offsetof (test_cfg_t, verbose), "false", "chatty" },
    { "worker", "heartbeat", SF_CFG_DURATION, offsetof (test_cfg_t, heartbeat), "1s", "beat" },
    { "scratch", "reserve", SF_CFG_SIZE, offsetof (test_cfg_t, scratch), "1GiB", "space" },
    { NULL }
};

void
sf_cfg_test (bool verbose)
{
    (void) verbose;
    printf (" * sf_cfg: ");
    //  @selftest
    sf_err_t err = SF_ERR_INIT;
    test_cfg_t cfg = { 0 };
    assert (sf_cfg_defaults (s_test_schema, &cfg, &err) == 0);
    assert (streq (cfg.name, "hv01") && cfg.max_jobs == 2 && !cfg.verbose);
    assert (cfg.heartbeat == 1000 && cfg.scratch == 1ull << 30);
    assert (sf_cfg_load_string (s_test_schema, &cfg,
        "# comment\n[worker]\nname = hv07\nmax_jobs=4\nverbose = yes\n"
        "heartbeat = 250ms\n[scratch]\nreserve = 64MiB\n", "t.conf", &err) == 0);
    assert (streq (cfg.name, "hv07") && cfg.max_jobs == 4 && cfg.verbose);
    assert (cfg.heartbeat == 250 && cfg.scratch == 64ull << 20);

    assert (sf_cfg_load_string (s_test_schema, &cfg, "[worker]\n\nmax_job = 3\n",
                                "t.conf", &err) == -1);
    assert (streq (err.text, "t.conf:3: unknown key 'max_job' in section '[worker]'"));
    assert (sf_cfg_load_string (s_test_schema, &cfg, "[wroker]\nname = x\n",
                                "t.conf", &err) == -1);
    assert (streq (err.text, "t.conf:2: unknown section '[wroker]'"));
    assert (sf_cfg_load_string (s_test_schema, &cfg, "[worker]\nheartbeat = soon\n",
                                "t.conf", &err) == -1);
    assert (strstr (err.text, "t.conf:2: 'worker.heartbeat' must be a duration"));
    assert (sf_cfg_load_string (s_test_schema, &cfg, "[worker]\nmax_jobs = 3x\n",
                                "t.conf", &err) == -1);
    assert (sf_cfg_load_string (s_test_schema, &cfg, "[worker\nname = x\n",
                                "t.conf", &err) == -1);
    assert (strstr (err.text, "t.conf:1: "));
    assert (sf_cfg_load (s_test_schema, &cfg, "/nonexistent/sf.conf", &err) == -1);
    assert (err.code == SF_ENOENT);
    assert (sf_cfg_set (s_test_schema, &cfg, "worker", "name", "hv09", &err) == 0);
    assert (streq (cfg.name, "hv09"));
    sf_cfg_release (s_test_schema, &cfg);
    assert (cfg.name == NULL);

    //  Checks after loading name the line of the key (the last one set)
    const char *text = "[worker]\nname = a\n; max_jobs = 1\n[scratch]\nmax_jobs = 2\n"
                       "[worker]\n  max_jobs : 3  # three\nname=b\n";
    assert (sf_cfg_key_line (text, "worker", "max_jobs") == 7);
    assert (sf_cfg_key_line (text, "worker", "name") == 8);
    assert (sf_cfg_key_line (text, "scratch", "max_jobs") == 5);
    assert (sf_cfg_key_line (text, "scratch", "name") == 0);
    assert (sf_cfg_key_line (NULL, "worker", "name") == 0);
    assert (sf_cfg_fail (&err, "t.conf", text, "worker", "max_jobs", "'%s' is bad",
                         "worker.max_jobs") == -1);
    assert (err.code == SF_EINVAL && streq (err.text, "t.conf:7: 'worker.max_jobs' is bad"));
    assert (sf_cfg_fail (&err, "t.conf", text, "worker", "verbose", "unset") == -1);
    assert (streq (err.text, "t.conf: unset"));
    assert (sf_cfg_read_text ("/nonexistent/sf.conf") == NULL);
    //  @end
    printf ("OK\n");
}
