/*
 * CCoil.h -- the one header Swift imports: Coil's C core.
 *
 * coil_mpmc.h   bounded MPMC queue of 64-bit words (Vyukov), hot paths inline
 * coil_umpmc.h  unbounded MPMC queue of 64-bit words (linked blocks)
 * coil_localq.h a worker's local run queue (one owner, stealers take half)
 * coil_context.h thread-local runtime context (current worker, cooperative budget)
 * coil_ring.h   io_uring driver: setup with fallback, SQE preparation, batch submit/reap, wake-ups
 *
 * Every exported symbol carries the coil_ prefix; functions return -errno on failure.
 */
#ifndef CCOIL_H
#define CCOIL_H
#include "coil_mpmc.h"
#include "coil_umpmc.h"
#include "coil_localq.h"
#include "coil_context.h"
#include "coil_ring.h"
#endif
