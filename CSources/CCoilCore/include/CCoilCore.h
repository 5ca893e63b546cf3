/* CCoilCore.h -- the one header CoilCore imports: its C support (static waker vtables, task IDs). */
#ifndef CCOILCORE_H
#define CCOILCORE_H
#include "coil_core_vtables.h"
#include "coil_task_id.h"
#endif
