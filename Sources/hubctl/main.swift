import HubCtl
import Foundation
exit(await HubCtl.main(Array(CommandLine.arguments.dropFirst())))
