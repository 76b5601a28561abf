/* Placeholder so the build configures; being written now. */
#include "policy/policy.h"
