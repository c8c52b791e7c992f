/*  =========================================================================
    sf_table - aligned text tables and human-readable numbers for the CLI

    The CLI's table output: a header row and columns padded to the widest
    cell, two spaces apart, numbers right-aligned, no trailing blanks,
    empty cells shown as "-". Widths count characters, not bytes, so
    UTF-8 names line up.
    =========================================================================
*/
#ifndef SF_TABLE_H_INCLUDED
#define SF_TABLE_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef struct _sf_table_t sf_table_t;

//  Create a table from its headers separated by '|'; a header starting
//  with '>' makes its column right-aligned (the '>' is not shown), e.g.
//  "NAME|STATE|>SIZE". Caller owns the result.
sf_table_t *
    sf_table_new (const char *headers);

//  Destroy the table. Nullifies *self_p.
void
    sf_table_destroy (sf_table_t **self_p);

//  Append one cell; rows fill left to right, then wrap. NULL or "" is
//  shown as "-".
void
    sf_table_add (sf_table_t *self, const char *cell);

//  Append one formatted cell.
void
    sf_table_addf (sf_table_t *self, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));

//  Number of complete rows added so far.
size_t
    sf_table_rows (sf_table_t *self);

//  Print header and rows to out.
void
    sf_table_print (sf_table_t *self, FILE *out);

//  A duration in ms for people: "0 ms", "212 ms", "4.2 s", "3m 05s",
//  "2h 01m". Returns buf.
char *
    sf_table_duration (int64_t ms, char *buf, size_t size);

//  Self test of this class
void
    sf_table_test (bool verbose);

#endif
