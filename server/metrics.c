/* Placeholder so the build configures; being written now. */
#include "server/metrics.h"
