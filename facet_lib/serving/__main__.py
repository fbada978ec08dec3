from facet_lib.serving.server import main

main()
