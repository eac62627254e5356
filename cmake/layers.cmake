# wick's layers: each folder of src/wick is one library, and a library uses only the layers below
# its own (the table at the top of docs/ARCHITECTURE.md). Three guards keep it so:
#  - compile: a library's sources find wick headers only under include roots in the build tree:
#    its own (wick_layer_library) and those of the libraries it links. So
#    `#include "wick/core/tensor.h"` in src/wick/io fails with "No such file or directory";
#  - configure: a library that links a library of its own layer or a higher one is an error
#    (wick_check_layer_links), so a wrong include cannot be made to compile by linking upward;
#  - build: every file under src/wick, compiled in this configuration or not (CUDA sources in a
#    build without CUDA, the Hub client without libcurl), is scanned for includes of higher layers
#    and for relative includes that leave their folder (cmake/check_layers.cmake).

# Folders of src/wick, lowest layer first; folders quoted together share a layer and know nothing
# of each other.
set(WICK_LAYERS base "io tokenizer chat" hub core backend models lora "train runtime" serve cli)

# Sets `out` to the layer (0 = lowest) of `folder`, or -1 when no layer holds it.
function(wick_layer_rank folder out)
  set(rank 0)
  foreach(layer IN LISTS WICK_LAYERS)
    string(REPLACE " " ";" folders "${layer}")
    if(folder IN_LIST folders)
      set(${out} ${rank} PARENT_SCOPE)
      return()
    endif()
    math(EXPR rank "${rank} + 1")
  endforeach()
  set(${out} -1 PARENT_SCOPE)
endfunction()

# Makes `target` the library (or executable) of src/wick/`folder`: its include root, in the build
# tree, holds wick/`folder` only (a symbolic link to the sources). The root is PUBLIC, so what links
# `target` sees its headers; `target` sees other folders only through the roots of what it links.
function(wick_layer_library target folder)
  wick_layer_rank(${folder} rank)
  if(rank LESS 0)
    message(FATAL_ERROR "${target}: src/wick/${folder} is in no layer of WICK_LAYERS (cmake/layers.cmake)")
  endif()
  set(root ${PROJECT_BINARY_DIR}/layers/${folder})
  file(REMOVE ${root}/wick/${folder})
  file(MAKE_DIRECTORY ${root}/wick)
  file(CREATE_LINK ${PROJECT_SOURCE_DIR}/src/wick/${folder} ${root}/wick/${folder} SYMBOLIC)
  get_target_property(type ${target} TYPE)
  if(type STREQUAL "EXECUTABLE")
    target_include_directories(${target} PRIVATE ${root})
  else()
    target_include_directories(${target} PUBLIC ${root})
  endif()
  set_target_properties(${target} PROPERTIES WICK_LAYER_FOLDER ${folder})
  set_property(GLOBAL APPEND PROPERTY WICK_LAYER_TARGETS ${target})
  add_dependencies(${target} wick_layer_check)  # the scan's message comes before compile errors
endfunction()

# Fails the configuration where a layer library links (and so could include) a library of its own
# layer or a higher one, or links an object library (wick_core, wick_backend) whose objects an
# archive of its own (wick_engine) already holds: a second copy of each object would follow.
function(wick_check_layer_links)
  get_property(targets GLOBAL PROPERTY WICK_LAYER_TARGETS)
  foreach(target IN LISTS targets)
    get_target_property(folder ${target} WICK_LAYER_FOLDER)
    wick_layer_rank(${folder} rank)
    get_target_property(links ${target} LINK_LIBRARIES)
    get_target_property(interface_links ${target} INTERFACE_LINK_LIBRARIES)
    get_target_property(type ${target} TYPE)
    foreach(dep IN LISTS links interface_links)
      if(NOT TARGET "${dep}" OR dep STREQUAL target)
        continue()  # not a target, or a generator expression such as $<LINK_ONLY:...>
      endif()
      get_target_property(dep_type ${dep} TYPE)
      if(dep_type STREQUAL "OBJECT_LIBRARY" AND NOT type STREQUAL "OBJECT_LIBRARY")
        message(FATAL_ERROR "${target} links the object library ${dep}: link the archive that holds its objects")
      endif()
      get_target_property(dep_folder ${dep} WICK_LAYER_FOLDER)
      if(NOT dep_folder)
        continue()
      endif()
      wick_layer_rank(${dep_folder} dep_rank)
      if(NOT dep_rank LESS rank)
        message(FATAL_ERROR "${target} (src/wick/${folder}) links ${dep} (src/wick/${dep_folder}), which is not "
                            "in a lower layer: a layer uses only the layers below it (cmake/layers.cmake)")
      endif()
    endforeach()
  endforeach()
endfunction()

# Scans every source of src/wick for includes across layers at each build where one changed
# (cmake/check_layers.cmake); the build fails and lists each include that crosses the layers.
function(wick_add_layer_check)
  file(GLOB_RECURSE sources CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/src/wick/*.h ${PROJECT_SOURCE_DIR}/src/wick/*.cpp
       ${PROJECT_SOURCE_DIR}/src/wick/*.cu ${PROJECT_SOURCE_DIR}/src/wick/*.cuh)
  set(stamp ${PROJECT_BINARY_DIR}/layers/includes_checked.stamp)
  add_custom_command(
    OUTPUT ${stamp}
    COMMAND ${CMAKE_COMMAND} -DSOURCE_DIR=${PROJECT_SOURCE_DIR} -DSTAMP=${stamp}
            -P ${PROJECT_SOURCE_DIR}/cmake/check_layers.cmake
    DEPENDS ${sources} ${PROJECT_SOURCE_DIR}/cmake/check_layers.cmake ${PROJECT_SOURCE_DIR}/cmake/layers.cmake
    COMMENT "Checking that no file of src/wick includes a higher layer"
    VERBATIM)
  add_custom_target(wick_layer_check ALL DEPENDS ${stamp})
endfunction()
