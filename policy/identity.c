/* Placeholder so the build configures; being written now. */
#include "policy/identity.h"
