# Warnings and sanitizers for every C target in the tree.
# POSIX.1-2008 for our own sources; the SDK headers need only C11.
add_compile_definitions(_POSIX_C_SOURCE=200809L)
add_compile_options(-Wall -Wextra -Wshadow -Wstrict-prototypes
                    -Wmissing-prototypes -Wvla -Wformat=2
                    -Wno-missing-field-initializers)
if(EMBER_WERROR)
  add_compile_options(-Werror)
endif()
if(EMBER_SANITIZE)
  add_compile_options(-fsanitize=${EMBER_SANITIZE} -fno-omit-frame-pointer
                      -fno-sanitize-recover=all)
  add_link_options(-fsanitize=${EMBER_SANITIZE})
endif()
