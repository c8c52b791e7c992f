/*  =========================================================================
    sf_heap - a binary heap of element pointers, ordered by a before()
    comparator; elements that store their own index can be removed or
    re-keyed anywhere in the heap, in O(log n)

    A value struct (embed it, sf_heap_init, sf_heap_release). The heap
    borrows its elements: it never frees one. It allocates only when it
    grows past its capacity (doubling), never per operation otherwise.
    Elements that compare equal come out in the order the algorithm gives
    (a plain binary heap: not stable), the same for the same operations.
    =========================================================================
*/
#ifndef SF_HEAP_H_INCLUDED
#define SF_HEAP_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

//  True if element a must come out before element b (a strict order:
//  before (a, a) is false)
typedef bool (sf_heap_before_fn) (const void *a, const void *b);

//  idx_off of a heap whose elements do not store their index
#define SF_HEAP_NO_INDEX    ((size_t) -1)
//  The stored index of an element that is in no heap (set when it leaves)
#define SF_HEAP_NOT_IN      ((size_t) -1)

typedef struct {
    void **items;               //  items [0] is the top; once the heap
                                //  is emptied it still holds the element
                                //  taken out last (sf_admit relies on it)
    size_t size, cap;
    sf_heap_before_fn *before;
    size_t idx_off;             //  offset of the size_t index, or NO_INDEX
} sf_heap_t;

//  Initialize an empty heap ordered by before. idx_off is the offset
//  (offsetof) of a size_t field in every element where the heap keeps the
//  element's position, or SF_HEAP_NO_INDEX: then sf_heap_has,
//  sf_heap_remove and sf_heap_fix must not be used. One element can sit in
//  several heaps at once if each has its own field.
void
    sf_heap_init (sf_heap_t *self, sf_heap_before_fn *before, size_t idx_off);

//  Free the heap's array (not the elements); the heap is then empty and
//  may be used again.
void
    sf_heap_release (sf_heap_t *self);

//  The number of elements.
size_t
    sf_heap_size (const sf_heap_t *self);

//  The element that comes out first, or NULL if the heap is empty.
void *
    sf_heap_top (const sf_heap_t *self);

//  Add e (not NULL, not in this heap).
void
    sf_heap_insert (sf_heap_t *self, void *e);

//  Take out and return the top element, or NULL if the heap is empty. Its
//  stored index (if any) becomes SF_HEAP_NOT_IN.
void *
    sf_heap_pop (sf_heap_t *self);

//  True if e is in this heap (indexed heaps only). Whatever the index
//  field of an element that is not in the heap holds, the answer is right.
bool
    sf_heap_has (const sf_heap_t *self, const void *e);

//  Take e, which must be in the heap, out of it (indexed heaps only). Its
//  stored index becomes SF_HEAP_NOT_IN.
void
    sf_heap_remove (sf_heap_t *self, void *e);

//  Restore the order after e's key changed (indexed heaps only; e must be
//  in the heap).
void
    sf_heap_fix (sf_heap_t *self, void *e);

//  Self test of this class
void
    sf_heap_test (bool verbose);

#endif
