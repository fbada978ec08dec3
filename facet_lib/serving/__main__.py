from facet_lib.serving.server import main

if __name__ == "__main__":  # render workers are spawned: they must not start a server on import
    main()
