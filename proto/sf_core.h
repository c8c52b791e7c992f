/*  =========================================================================
    sf_core - umbrella header of the shared library (sfcore) linked by the
    scheduler, the worker and the CLI
    =========================================================================
*/
#ifndef SF_CORE_H_INCLUDED
#define SF_CORE_H_INCLUDED

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <czmq.h>

#define SF_VERSION "0.1.0"

#include "sf_err.h"
#include "sf_log.h"
#include "sf_util.h"
#include "sf_cfg.h"
#include "sf_wire.h"
#include "sf_strategies.h"
#include "sf_naming.h"
#include "sf_heap.h"
#include "sf_cert.h"
#include "sf_auth.h"
#include "sf_selftest.h"

#endif
