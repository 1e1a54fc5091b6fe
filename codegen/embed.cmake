# embed.cmake - write IN (a text file) as a C string constant NAME into OUT.
#   cmake -DIN=abi.h -DOUT=abi_text.inc -DNAME=cg_abi_text -P embed.cmake
file(READ ${IN} text)
string(REPLACE "\\" "\\\\" text "${text}")
string(REPLACE "\"" "\\\"" text "${text}")
string(REPLACE "\n" "\\n\"\n\"" text "${text}")
file(WRITE ${OUT} "/* generated from ${IN} by embed.cmake: do not edit */\nstatic const char ${NAME}[] =\n\"${text}\";\n")
