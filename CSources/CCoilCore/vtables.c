/* coil_core_vtables.c -- see coil_core_vtables.h. The functions are defined in Swift (CoilCore). */
#include "coil_core_vtables.h"

const void *coil__task_waker_clone(const void *data);
void coil__task_waker_wake(const void *data);
void coil__task_waker_wake_by_ref(const void *data);
void coil__task_waker_drop(const void *data);

const void *coil__noop_waker_clone(const void *data);
void coil__noop_waker_wake(const void *data);

const void *coil__waker_target_clone(const void *data);
void coil__waker_target_wake(const void *data);
void coil__waker_target_wake_by_ref(const void *data);
void coil__waker_target_drop(const void *data);

const coil_waker_vtable_t coil_task_waker_vtable = {
    coil__task_waker_clone, coil__task_waker_wake, coil__task_waker_wake_by_ref, coil__task_waker_drop,
};

const coil_waker_vtable_t coil_noop_waker_vtable = {
    coil__noop_waker_clone, coil__noop_waker_wake, coil__noop_waker_wake, coil__noop_waker_wake,
};

const coil_waker_vtable_t coil_waker_target_vtable = {
    coil__waker_target_clone, coil__waker_target_wake, coil__waker_target_wake_by_ref, coil__waker_target_drop,
};
