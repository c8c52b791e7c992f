/*  =========================================================================
    sf_table - aligned text tables and human-readable numbers for the CLI

    Cells are kept until print, because a column's width is only known
    once every row is in.
    =========================================================================
*/
#include "sf_core.h"
#include "sf_table.h"

struct _sf_table_t {
    zlistx_t *headers;          //  Owned strings, '>' stripped
    bool *right;                //  Owned: per column, right-aligned
    size_t columns;
    zlistx_t *cells;            //  Owned strings, row-major
};

//  Characters (not bytes) in a UTF-8 string

static size_t
s_width (const char *text)
{
    size_t width = 0;
    for (; *text; text++)
        if (((unsigned char) *text & 0xC0) != 0x80)
            width++;
    return width;
}

sf_table_t *
sf_table_new (const char *headers)
{
    assert (headers);
    sf_table_t *self = (sf_table_t *) zmalloc (sizeof (sf_table_t));
    self->headers = zlistx_new ();
    zlistx_set_destructor (self->headers, (zlistx_destructor_fn *) zstr_free);
    self->cells = zlistx_new ();
    zlistx_set_destructor (self->cells, (zlistx_destructor_fn *) zstr_free);
    self->right = (bool *) zmalloc (strlen (headers) + 1);
    char *copy = strdup (headers);
    char *save = NULL;
    for (char *header = strtok_r (copy, "|", &save); header;
         header = strtok_r (NULL, "|", &save)) {
        self->right [self->columns++] = *header == '>';
        zlistx_add_end (self->headers, strdup (header + (*header == '>')));
    }
    free (copy);
    assert (self->columns > 0);
    return self;
}

void
sf_table_destroy (sf_table_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        sf_table_t *self = *self_p;
        zlistx_destroy (&self->headers);
        zlistx_destroy (&self->cells);
        free (self->right);
        free (self);
        *self_p = NULL;
    }
}

void
sf_table_add (sf_table_t *self, const char *cell)
{
    assert (self);
    //  Escaped (sf_log_escape): a cell is often a peer's string (a node or
    //  instance name, an error text) and must not repaint the terminal
    zlistx_add_end (self->cells, sf_log_escape_dup (cell && *cell? cell: "-"));
}

void
sf_table_addf (sf_table_t *self, const char *format, ...)
{
    assert (self);
    va_list args;
    va_start (args, format);
    char *cell = zsys_vprintf (format, args);
    va_end (args);
    sf_table_add (self, cell);
    zstr_free (&cell);
}

size_t
sf_table_rows (sf_table_t *self)
{
    assert (self);
    return zlistx_size (self->cells) / self->columns;
}

static void
s_print_row (sf_table_t *self, const char **row, const size_t *widths, FILE *out)
{
    //  Find the last column so that no line ends in blanks
    for (size_t col = 0; col < self->columns; col++) {
        size_t pad = widths [col] - s_width (row [col]);
        bool last = col + 1 == self->columns;
        if (self->right [col])
            fprintf (out, "%*s%s", (int) pad, "", row [col]);
        else
            fprintf (out, "%s%*s", row [col], last? 0: (int) pad, "");
        fputs (last? "\n": "  ", out);
    }
}

void
sf_table_print (sf_table_t *self, FILE *out)
{
    assert (self);
    size_t rows = sf_table_rows (self);
    const char **cells = (const char **) zmalloc ((rows + 1) * self->columns * sizeof (char *));
    size_t index = 0;
    for (const char *header = (const char *) zlistx_first (self->headers); header;
         header = (const char *) zlistx_next (self->headers))
        cells [index++] = header;
    for (const char *cell = (const char *) zlistx_first (self->cells);
         cell && index < (rows + 1) * self->columns;
         cell = (const char *) zlistx_next (self->cells))
        cells [index++] = cell;
    size_t *widths = (size_t *) zmalloc (self->columns * sizeof (size_t));
    for (size_t i = 0; i < index; i++) {
        size_t width = s_width (cells [i]);
        if (width > widths [i % self->columns])
            widths [i % self->columns] = width;
    }
    for (size_t row = 0; row <= rows; row++)
        s_print_row (self, cells + row * self->columns, widths, out);
    free (widths);
    free (cells);
}

char *
sf_table_duration (int64_t ms, char *buf, size_t size)
{
    if (ms < 1000)
        snprintf (buf, size, "%" PRId64 " ms", ms < 0? 0: ms);
    else
    if (ms < 60000)
        snprintf (buf, size, "%.1f s", (double) ms / 1000);
    else
    if (ms < 3600000)
        snprintf (buf, size, "%" PRId64 "m %02" PRId64 "s", ms / 60000, ms / 1000 % 60);
    else
        snprintf (buf, size, "%" PRId64 "h %02" PRId64 "m", ms / 3600000, ms / 60000 % 60);
    return buf;
}

//  --------------------------------------------------------------------------
//  Self test

void
sf_table_test (bool verbose)
{
    printf (" * sf_table: ");
    //  @selftest
    sf_table_t *table = sf_table_new ("NAME|STATE|>SIZE");
    sf_table_add (table, "web1");
    sf_table_add (table, "running");
    sf_table_add (table, "10 GiB");
    sf_table_add (table, "d\xC3\xA9j\xC3\xA0");     //  4 characters, 6 bytes
    sf_table_add (table, NULL);
    sf_table_addf (table, "%d B", 512);
    assert (sf_table_rows (table) == 2);
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream (&text, &size);
    sf_table_print (table, out);
    fclose (out);
    if (verbose)
        printf ("\n%s", text);
    assert (streq (text, "NAME  STATE      SIZE\n"
                         "web1  running  10 GiB\n"
                         "d\xC3\xA9j\xC3\xA0  -         512 B\n"));
    free (text);
    sf_table_destroy (&table);
    assert (table == NULL);

    //  Hostile cells are printed escaped, one line per row, aligned by
    //  what is printed
    table = sf_table_new ("NODE|ERROR");
    sf_table_add (table, "n1\x1b[2J\x1b[H");
    sf_table_add (table, "line1\nline2\r\xff");
    sf_table_add (table, "n2");
    sf_table_add (table, "ok");
    out = open_memstream (&text, &size);
    sf_table_print (table, out);
    fclose (out);
    assert (streq (text, "NODE             ERROR\n"
                         "n1\\x1b[2J\\x1b[H  line1\\nline2\\r\\xff\n"
                         "n2               ok\n"));
    free (text);
    sf_table_destroy (&table);

    //  An empty table prints its header only
    table = sf_table_new ("A|B");
    out = open_memstream (&text, &size);
    sf_table_print (table, out);
    fclose (out);
    assert (streq (text, "A  B\n"));
    free (text);
    sf_table_destroy (&table);

    char buf [32];
    assert (streq (sf_table_duration (212, buf, sizeof (buf)), "212 ms"));
    assert (streq (sf_table_duration (4200, buf, sizeof (buf)), "4.2 s"));
    assert (streq (sf_table_duration (185000, buf, sizeof (buf)), "3m 05s"));
    assert (streq (sf_table_duration (7260000, buf, sizeof (buf)), "2h 01m"));
    //  @end
    printf ("OK\n");
}
