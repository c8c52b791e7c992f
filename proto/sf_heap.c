/*  =========================================================================
    sf_heap - a binary heap of element pointers, ordered by a before()
    comparator, with optional stored indexes

    The admission queues of the scheduler (sf_admit), the plan's capture
    ends (sf_plan) and the simulator's timers (bench/sf_simfleet) use it.
    Sift-up stops at an equal parent and sift-down moves an element below
    a child only if the child comes strictly before it: ties stay where
    they are, so equal keys cost no moves.
    =========================================================================
*/
#include "sf_core.h"

#define IDX(self, e) (*(size_t *) ((char *) (e) + (self)->idx_off))

//  --------------------------------------------------------------------------
//  Initialize and release

void
sf_heap_init (sf_heap_t *self, sf_heap_before_fn *before, size_t idx_off)
{
    assert (self);
    assert (before);
    memset (self, 0, sizeof (*self));
    self->before = before;
    self->idx_off = idx_off;
}

void
sf_heap_release (sf_heap_t *self)
{
    assert (self);
    free (self->items);
    self->items = NULL;
    self->size = self->cap = 0;
}

//  --------------------------------------------------------------------------
//  Sifting

static inline void
s_set (sf_heap_t *self, size_t i, void *e)
{
    self->items [i] = e;
    if (self->idx_off != SF_HEAP_NO_INDEX)
        IDX (self, e) = i;
}

//  Move the element at i up while it comes before its parent. Returns its
//  final position.

static size_t
s_up (sf_heap_t *self, size_t i)
{
    void *e = self->items [i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!self->before (e, self->items [parent]))
            break;
        s_set (self, i, self->items [parent]);
        i = parent;
    }
    s_set (self, i, e);
    return i;
}

//  Move the element at i down while a child comes before it

static void
s_down (sf_heap_t *self, size_t i)
{
    void *e = self->items [i];
    while (true) {
        size_t child = 2 * i + 1;
        if (child >= self->size)
            break;
        if (child + 1 < self->size
        &&  self->before (self->items [child + 1], self->items [child]))
            child++;
        if (!self->before (self->items [child], e))
            break;
        s_set (self, i, self->items [child]);
        i = child;
    }
    s_set (self, i, e);
}

//  Take out the element at i: the last one takes its place

static void
s_remove_at (sf_heap_t *self, size_t i)
{
    if (self->idx_off != SF_HEAP_NO_INDEX)
        IDX (self, self->items [i]) = SF_HEAP_NOT_IN;
    void *last = self->items [--self->size];
    if (i < self->size) {
        s_set (self, i, last);
        s_down (self, s_up (self, i));
    }
}

//  --------------------------------------------------------------------------
//  Operations

size_t
sf_heap_size (const sf_heap_t *self)
{
    assert (self);
    return self->size;
}

void *
sf_heap_top (const sf_heap_t *self)
{
    assert (self);
    return self->size? self->items [0]: NULL;
}

void
sf_heap_insert (sf_heap_t *self, void *e)
{
    assert (self);
    assert (e);
    if (self->size == self->cap) {
        self->cap = self->cap? self->cap * 2: 8;
        self->items = (void **) realloc (self->items, self->cap * sizeof (void *));
        assert (self->items);
    }
    s_set (self, self->size++, e);
    s_up (self, self->size - 1);
}

void *
sf_heap_pop (sf_heap_t *self)
{
    assert (self);
    if (self->size == 0)
        return NULL;
    void *top = self->items [0];
    s_remove_at (self, 0);
    return top;
}

bool
sf_heap_has (const sf_heap_t *self, const void *e)
{
    assert (self);
    assert (self->idx_off != SF_HEAP_NO_INDEX);
    size_t i = IDX (self, e);
    return i < self->size && self->items [i] == e;
}

void
sf_heap_remove (sf_heap_t *self, void *e)
{
    assert (sf_heap_has (self, e));
    s_remove_at (self, IDX (self, e));
}

void
sf_heap_fix (sf_heap_t *self, void *e)
{
    assert (sf_heap_has (self, e));
    s_down (self, s_up (self, IDX (self, e)));
}

//  --------------------------------------------------------------------------
//  Self test

typedef struct {
    int key;
    int id;                     //  Its position in the test's array
    size_t idx;                 //  Position in the test heap
    size_t idx2;                //  Position in the second heap
} item_t;

static bool
s_item_before (const void *a, const void *b)
{
    return ((const item_t *) a)->key < ((const item_t *) b)->key;
}

static bool
s_item_after (const void *a, const void *b)
{
    return ((const item_t *) a)->key > ((const item_t *) b)->key;
}

//  Every parent does not come after its children, every index is right

static void
s_check (const sf_heap_t *heap)
{
    for (size_t i = 0; i < heap->size; i++) {
        if (i > 0)
            assert (!heap->before (heap->items [i], heap->items [(i - 1) / 2]));
        if (heap->idx_off != SF_HEAP_NO_INDEX)
            assert (IDX (heap, heap->items [i]) == i);
    }
}

void
sf_heap_test (bool verbose)
{
    (void) verbose;
    printf (" * sf_heap: ");
    //  @selftest
    enum { N = 500 };
    item_t *items = (item_t *) calloc (N, sizeof (item_t));
    assert (items);
    sf_heap_t heap;
    sf_heap_init (&heap, s_item_before, offsetof (item_t, idx));
    assert (sf_heap_size (&heap) == 0 && sf_heap_top (&heap) == NULL);
    assert (sf_heap_pop (&heap) == NULL);
    //  A zeroed element that was never inserted is not in the heap
    assert (!sf_heap_has (&heap, &items [0]));

    //  Insert in a scrambled order with repeated keys: pops come out sorted
    for (int i = 0; i < N; i++) {
        items [i].key = (i * 7919) % 101;
        items [i].id = i;
        sf_heap_insert (&heap, &items [i]);
    }
    s_check (&heap);
    assert (sf_heap_size (&heap) == N);
    assert (((item_t *) sf_heap_top (&heap))->key == 0);
    int last = -1;
    for (int i = 0; i < N; i++) {
        item_t *item = (item_t *) sf_heap_pop (&heap);
        assert (item && item->key >= last);
        assert (item->idx == SF_HEAP_NOT_IN);
        assert (!sf_heap_has (&heap, item));
        last = item->key;
        s_check (&heap);
    }
    assert (sf_heap_size (&heap) == 0);

    //  Remove from anywhere, and re-key: the order holds throughout
    for (int i = 0; i < N; i++)
        sf_heap_insert (&heap, &items [i]);
    for (int i = 0; i < N; i += 3) {
        assert (sf_heap_has (&heap, &items [i]));
        sf_heap_remove (&heap, &items [i]);
        assert (!sf_heap_has (&heap, &items [i]));
        assert (items [i].idx == SF_HEAP_NOT_IN);
        s_check (&heap);
    }
    assert (sf_heap_size (&heap) == N - (N + 2) / 3);
    for (int i = 1; i < N; i += 3) {
        items [i].key = i % 2? -i: 1000 + i;        //  up and down
        sf_heap_fix (&heap, &items [i]);
        s_check (&heap);
    }
    last = INT32_MIN;
    size_t count = 0;
    item_t *item;
    while ((item = (item_t *) sf_heap_pop (&heap))) {
        assert (item->id % 3 != 0);
        assert (item->key >= last);
        last = item->key;
        count++;
    }
    assert (count == N - (N + 2) / 3);

    //  One element in two heaps at once, each with its own index; a heap
    //  without indexes
    sf_heap_t max, plain;
    sf_heap_init (&max, s_item_after, offsetof (item_t, idx2));
    sf_heap_init (&plain, s_item_before, SF_HEAP_NO_INDEX);
    for (int i = 0; i < 10; i++) {
        items [i].key = i;
        sf_heap_insert (&heap, &items [i]);
        sf_heap_insert (&max, &items [i]);
        sf_heap_insert (&plain, &items [i]);
    }
    sf_heap_remove (&max, &items [9]);
    assert (sf_heap_has (&heap, &items [9]) && !sf_heap_has (&max, &items [9]));
    assert (((item_t *) sf_heap_top (&max))->key == 8);
    assert (((item_t *) sf_heap_top (&heap))->key == 0);
    s_check (&heap);
    s_check (&max);
    for (int i = 0; i < 10; i++)
        assert (((item_t *) sf_heap_pop (&plain))->key == i);
    //  The array keeps the element taken out last
    assert (sf_heap_size (&plain) == 0 && plain.items [0] == &items [9]);

    //  Release empties the heap, which can be used again
    sf_heap_release (&heap);
    assert (sf_heap_size (&heap) == 0 && sf_heap_top (&heap) == NULL);
    sf_heap_insert (&heap, &items [3]);
    assert (sf_heap_top (&heap) == &items [3]);
    sf_heap_release (&heap);
    sf_heap_release (&max);
    sf_heap_release (&plain);
    free (items);
    //  @end
    printf ("OK\n");
}
