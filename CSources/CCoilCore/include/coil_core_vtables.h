/*
 * coil_core_vtables.h -- the waker vtables CoilCore itself defines (a task's, the no-op waker's,
 * a WakerTarget's), in static storage.
 *
 * Why C: a RawWaker points at its vtable, so the vtable needs a fixed address. In Swift that is
 * either a lazily initialised global (every poll of every task then paid a swift_once call to
 * find the task waker's vtable, and its first use put a long-lived allocation in the middle of
 * the heap) or a global `var` whose address is taken with `&` (ThreadSanitizer reports that as a
 * write by every thread that takes it). A C `const` object has an address from load time on.
 *
 * The functions are CoilCore's, exported with @_cdecl (Task.swift, Waker.swift); this file only
 * lays them out. The layout is Swift's WakerVTable: four C function pointers, clone, wake,
 * wake_by_ref, drop (checked by WakerTests).
 */
#ifndef COIL_CORE_VTABLES_H
#define COIL_CORE_VTABLES_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct coil_waker_vtable {
    const void *(*clone)(const void *data);
    void (*wake)(const void *data);
    void (*wake_by_ref)(const void *data);
    void (*drop)(const void *data);
} coil_waker_vtable_t;

_Static_assert(sizeof(coil_waker_vtable_t) == 32, "four function pointers, as Swift's WakerVTable");

extern const coil_waker_vtable_t coil_task_waker_vtable;
extern const coil_waker_vtable_t coil_noop_waker_vtable;
extern const coil_waker_vtable_t coil_waker_target_vtable;

/* Their addresses (a function, so that Swift reads a constant, not a C global through an accessor). */
static inline const void *coil_task_waker_vtable_address(void) { return &coil_task_waker_vtable; }
static inline const void *coil_noop_waker_vtable_address(void) { return &coil_noop_waker_vtable; }
static inline const void *coil_waker_target_vtable_address(void) { return &coil_waker_target_vtable; }
static inline size_t coil_waker_vtable_size(void) { return sizeof(coil_waker_vtable_t); }

#ifdef __cplusplus
}
#endif
#endif /* COIL_CORE_VTABLES_H */
