/*  =========================================================================
    sf_log - one process-wide log sink with per-file module names

    Each .c file declares SF_LOG_MODULE ("worker.task"). Calls take an
    optional context (job, node, vm) that becomes structured fields:
      text: 2026-11-25T10:00:00.123Z info worker.task job=J42 vm=web1: msg
      json: {"ts":"...","level":"info","module":"worker.task","job_id":...}
    The sink is configured once in main() and is read-only afterwards.
    Secrets are never logged.
    =========================================================================
*/
#ifndef SF_LOG_H_INCLUDED
#define SF_LOG_H_INCLUDED

#include <stdbool.h>

typedef enum {
    SF_LOG_ERR = 3,
    SF_LOG_WARNING = 4,
    SF_LOG_NOTICE = 5,
    SF_LOG_INFO = 6,
    SF_LOG_DEBUG = 7,
} sf_log_level_t;

typedef enum {
    SF_LOG_TEXT = 0,
    SF_LOG_JSON = 1,
} sf_log_format_t;

typedef struct {
    const char *job_id;     //  Borrowed, may be NULL
    const char *node;       //  Borrowed, may be NULL
    const char *vm;         //  Borrowed, may be NULL
} sf_logctx_t;

#define SF_LOG_MODULE(name) static const char *s_log_module __attribute__ ((unused)) = name

//  Configure the sink (call from main only). level: maximum level shown.
void
    sf_log_setup (sf_log_level_t level, sf_log_format_t format);

//  Parse "err|warning|notice|info|debug" and "text|json"; -1 if unknown.
int
    sf_log_level_parse (const char *name);
int
    sf_log_format_parse (const char *name);

//  True if a record at this level would be written.
bool
    sf_log_enabled (sf_log_level_t level);

void
    sf_log_write (sf_log_level_t level, const char *module,
                  const sf_logctx_t *ctx, const char *format, ...)
    __attribute__ ((format (printf, 4, 5)));

//  Write text into buf (size bytes, NUL-terminated) with everything that
//  could forge a line or drive a terminal escaped: \n \r \t and \\ as
//  such, other control characters, DEL, C1 controls and bytes that are not
//  valid UTF-8 as \xHH; printable ASCII and valid UTF-8 as they are. Cut
//  at a whole character or escape if buf is short. Returns its length.
//  Text log lines escape every value this way (JSON lines escape as JSON).
size_t
    sf_log_escape (const char *text, char *buf, size_t size);

//  Same, into a new string. Caller frees it.
char *
    sf_log_escape_dup (const char *text);

#define SF_ERROR(ctx, ...)   sf_log_write (SF_LOG_ERR, s_log_module, (ctx), __VA_ARGS__)
#define SF_WARN(ctx, ...)    sf_log_write (SF_LOG_WARNING, s_log_module, (ctx), __VA_ARGS__)
#define SF_NOTICE(ctx, ...)  sf_log_write (SF_LOG_NOTICE, s_log_module, (ctx), __VA_ARGS__)
#define SF_INFO(ctx, ...)    sf_log_write (SF_LOG_INFO, s_log_module, (ctx), __VA_ARGS__)
#define SF_DEBUG(ctx, ...)   sf_log_write (SF_LOG_DEBUG, s_log_module, (ctx), __VA_ARGS__)

//  Self test of this class
void
    sf_log_test (bool verbose);

#endif
