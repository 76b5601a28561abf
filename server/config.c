/* Placeholder so the build configures; being written now. */
#include "server/config.h"
