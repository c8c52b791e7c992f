/*  =========================================================================
    sf_cfg - INI configuration loaded through a static schema table

    Each program declares its options once, as a static const table of
    sf_cfg_opt_t (section, key, type, offset into its config struct, default,
    help). Unknown sections and keys are errors naming the line, values are
    type-checked (durations take units, sizes IEC units), and defaults are
    applied before the file is read.
    =========================================================================
*/
#ifndef SF_CFG_H_INCLUDED
#define SF_CFG_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    SF_CFG_STR,             //  char *, owned by the config struct
    SF_CFG_INT,             //  int64_t
    SF_CFG_BOOL,            //  bool: true/false/yes/no/on/off/1/0
    SF_CFG_DURATION,        //  int64_t milliseconds: "30s", "250ms"
    SF_CFG_SIZE,            //  uint64_t bytes: "64MiB"
} sf_cfg_type_t;

typedef struct {
    const char *section;    //  "worker"
    const char *key;        //  "scheduler"
    sf_cfg_type_t type;
    size_t offset;          //  offsetof (my_cfg_t, field)
    const char *dflt;       //  default as text, NULL = none (zero/NULL)
    const char *help;       //  one line, for --help and the example file
} sf_cfg_opt_t;

//  Apply every default of schema (NULL-terminated by key == NULL) to target.
//  Returns 0, or -1 with err set if a default does not parse (a bug).
int
    sf_cfg_defaults (const sf_cfg_opt_t *schema, void *target, sf_err_t *err);

//  Read an INI file into target (defaults must already be applied).
//  Returns 0, or -1 with err set: file missing, syntax error, unknown
//  section or key, or bad value, naming the file and line.
int
    sf_cfg_load (const sf_cfg_opt_t *schema, void *target, const char *path,
                 sf_err_t *err);

//  Same, from a string (for tests). name is used in messages.
int
    sf_cfg_load_string (const sf_cfg_opt_t *schema, void *target,
                        const char *text, const char *name, sf_err_t *err);

//  Set one option by section and key from text (command-line overrides).
int
    sf_cfg_set (const sf_cfg_opt_t *schema, void *target, const char *section,
                const char *key, const char *value, sf_err_t *err);

//  --------------------------------------------------------------------------
//  Checks after loading (values that parse but do not make sense) name
//  the line too, as sf_cfg_load does: the caller keeps the file's text.

//  The text of the config file at path (its first MiB), or NULL if it
//  cannot be read. Caller frees.
char *
    sf_cfg_read_text (const char *path);

//  Line number of the last "key = ..." (or "key: ...") inside [section]
//  of INI text, the one sf_cfg keeps; 0 if none or text is NULL.
int
    sf_cfg_key_line (const char *text, const char *section, const char *key);

//  Set err (SF_EINVAL) to "NAME:LINE: message", LINE being that of
//  section.key in text, or to "NAME: message" if text does not set it
//  (text may be NULL: only defaults). Returns -1.
int
    sf_cfg_fail (sf_err_t *err, const char *name, const char *text, const char *section,
                 const char *key, const char *format, ...)
    __attribute__ ((format (printf, 6, 7)));

//  Free every string option in target.
void
    sf_cfg_release (const sf_cfg_opt_t *schema, void *target);

//  Self test of this class
void
    sf_cfg_test (bool verbose);

#endif
